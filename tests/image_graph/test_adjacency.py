import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph import adjacency as A


def _loop(fn, x):
    """Reference: one graph at a time, one pair at a time."""
    b, n = x.shape[:2]
    out = torch.zeros(b, n, n)
    for k in range(b):
        for i in range(n):
            for j in range(n):
                if i != j:
                    out[k, i, j] = fn(x[k, i], x[k, j])
    return out


def test_weighted_builders_match_pairwise_formulas_per_graph():
    torch.manual_seed(0)
    c = torch.rand(3, 5, 2) * 10
    torch.testing.assert_close(
        A.inverse_distance(c), _loop(lambda p, q: 1 / (1 + (p - q).norm()), c)
    )
    torch.testing.assert_close(
        A.gaussian_kernel(c, sigma=3.0),
        _loop(lambda p, q: torch.exp(-((p - q) ** 2).sum() / 18), c),
    )
    x = torch.randn(3, 5, 4)
    sim = A.feature_similarity(x)
    torch.testing.assert_close(sim, _loop(lambda p, q: torch.clamp(p @ q, min=0), x))
    assert (sim >= 0).all() and (sim == 0).any()


def test_builders_do_not_mix_graphs_of_the_batch():
    torch.manual_seed(0)
    c = torch.rand(4, 6, 2)
    for fn in (A.inverse_distance, A.gaussian_kernel, A.knn_adjacency):
        batched = fn(c)
        torch.testing.assert_close(batched, torch.cat([fn(c[i : i + 1]) for i in range(4)]))


def test_knn():
    pts = torch.tensor([[[0.0, 0], [1, 0], [3, 0], [10, 0]]])
    directed = A.knn_adjacency(pts, k=1, symmetric=False)
    expected = torch.tensor([[[0.0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]])
    torch.testing.assert_close(directed, expected)
    sym = A.knn_adjacency(pts, k=1)
    torch.testing.assert_close(sym, torch.maximum(expected, expected.transpose(1, 2)))
    assert (A.knn_adjacency(torch.rand(2, 7, 3), k=3).sum(-1) >= 3).all()
    with pytest.raises(ConfigError, match="need 1 <= k < n=4"):
        A.knn_adjacency(pts, k=4)


def test_normalisations_match_dense_formula():
    torch.manual_seed(0)
    a = A.inverse_distance(torch.rand(3, 6, 2))
    for k in range(3):
        ai = a[k] + torch.eye(6)
        d = torch.diag(ai.sum(1))
        dinv_sqrt = torch.linalg.inv(torch.sqrt(d))
        torch.testing.assert_close(A.symmetric_normalize(a)[k], dinv_sqrt @ ai @ dinv_sqrt)
        torch.testing.assert_close(A.row_normalize(a)[k], torch.linalg.inv(d) @ ai)
    torch.testing.assert_close(A.row_normalize(a).sum(-1), torch.ones(3, 6))
    # without self-loops an isolated node stays zero rather than NaN
    iso = torch.zeros(1, 3, 3)
    iso[0, 0, 1] = iso[0, 1, 0] = 1
    out = A.symmetric_normalize(iso, add_self_loops=False)
    assert torch.isfinite(out).all() and out[0, 2].abs().sum() == 0


def test_edge_index_round_trip():
    torch.manual_seed(0)
    a = A.knn_adjacency(torch.rand(3, 5, 2), k=2) * torch.rand(3, 5, 5)
    edge_index, weight = A.dense_to_edge_index(a)
    assert edge_index.shape == (2, int((a != 0).sum()))
    assert (edge_index[0] // 5 == edge_index[1] // 5).all()
    torch.testing.assert_close(A.edge_index_to_dense(edge_index, weight, 3, 5), a)
    with pytest.raises(ConfigError, match="joins two different graphs"):
        A.edge_index_to_dense(torch.tensor([[0], [7]]), None, 2, 5)
    with pytest.raises(ConfigError, match=r"expected a batch \(B, n, d\)"):
        A.inverse_distance(torch.rand(5, 2))
