import pytest
import torch

from deep3dmm.nn.topk import score_topk


def reference(q, k, top):
    """Top-k column sets of the dense score matrix, each row sorted."""
    return (q.t() @ k).topk(top, dim=1).indices.sort(dim=1).values


def normalised(*shape):
    return torch.nn.functional.normalize(torch.randn(*shape, dtype=torch.float64), dim=0)


@pytest.mark.parametrize("chunk_rows", [7, 2048])
def test_exact_on_first_call_and_after_drift(chunk_rows):
    torch.manual_seed(0)
    q, k = normalised(5, 60), normalised(5, 300)
    index, candidates, refreshed = score_topk(q, k, 8, chunk_rows=chunk_rows)
    assert refreshed == 60 and candidates.shape == (60, 16)
    assert torch.equal(index.sort(dim=1).values, reference(q, k, 8))
    total = 0
    for step in range(30):  # small drift: most rows keep their candidates
        q = torch.nn.functional.normalize(q + 0.02 * torch.randn_like(q), dim=0)
        k = torch.nn.functional.normalize(k + 0.02 * torch.randn_like(k), dim=0)
        index, candidates, refreshed = score_topk(
            q, k, 8, candidates=candidates, chunk_rows=chunk_rows
        )
        assert torch.equal(index.sort(dim=1).values, reference(q, k, 8)), step
        assert len(set(index[0].tolist())) == 8
        total += refreshed
    assert 0 < total < 30 * 60  # the check caught real changes, and reuse happened


def test_wrong_candidates_are_detected():
    """Candidates from another problem (the worst hint) still give the exact top-k."""
    torch.manual_seed(1)
    q, k = normalised(4, 50), normalised(4, 200)
    bad = torch.stack([torch.randperm(200)[:12] for _ in range(50)])
    index, fresh, refreshed = score_topk(q, k, 6, candidates=bad, width=12)
    assert torch.equal(index.sort(dim=1).values, reference(q, k, 6))
    assert refreshed > 0
    # and the refreshed candidates hold each row's 12 best columns
    assert torch.equal(fresh.sort(dim=1).values, reference(q, k, 12))


def test_candidates_of_another_shape_are_ignored_and_narrow_rows_use_plain_topk():
    torch.manual_seed(2)
    q, k = normalised(3, 20), normalised(3, 40)
    index, fresh, refreshed = score_topk(q, k, 4, candidates=torch.zeros(5, 8, dtype=torch.long))
    assert refreshed == 20 and fresh.shape == (20, 8)
    assert torch.equal(index.sort(dim=1).values, reference(q, k, 4))
    index, fresh, refreshed = score_topk(q, k, 30)  # 2k >= N: nothing to reuse
    assert fresh is None and refreshed == 20
    assert torch.equal(index.sort(dim=1).values, reference(q, k, 30))
