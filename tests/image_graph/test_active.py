import itertools

import pytest
import torch

from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.image_graph.active import (
    ActiveResult,
    SamplerGCN,
    kcenter_greedy,
    load_active_results,
    run_active_learning,
    sampler_adjacency,
    sampler_loss,
    train_sampler,
    uncertainty_select,
)
from deep3dmm.image_graph.datasets import ImageSplit


def test_sampler_adjacency_matches_dense_formula():
    torch.manual_seed(0)
    feats = torch.rand(7, 4, dtype=torch.float64)
    a = sampler_adjacency(feats)
    n = feats / feats.norm(dim=1, keepdim=True)
    s = n @ n.T - torch.eye(7, dtype=torch.float64)
    ref = torch.diag(1 / s.sum(1)) @ s + torch.eye(7, dtype=torch.float64)
    torch.testing.assert_close(a, ref)
    torch.testing.assert_close(a.sum(1), torch.full((7,), 2.0, dtype=torch.float64))
    torch.testing.assert_close(torch.diagonal(a), torch.ones(7, dtype=torch.float64))


def test_sampler_gcn_and_loss_reference():
    torch.manual_seed(1)
    gcn = SamplerGCN(4, hidden=8, dropout=0.3).double().eval()
    x = torch.rand(6, 4, dtype=torch.float64)
    a = sampler_adjacency(x)
    scores, h = gcn(x, a)
    ref_h = torch.relu(a @ (x @ gcn.gc1.weight.T + gcn.gc1.bias))
    ref_s = torch.sigmoid(a @ (ref_h @ gcn.gc2.weight.T + gcn.gc2.bias))[:, 0]
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(scores, ref_s)
    lab = torch.tensor([True, False, False, True, False, False])
    ref = -torch.log(scores[lab]).mean() - 1.2 * torch.log(1 - scores[~lab]).mean()
    torch.testing.assert_close(sampler_loss(scores, lab), ref)
    assert "hidden=8" in repr(gcn)


def test_train_sampler_separates_labelled_nodes():
    torch.manual_seed(2)
    # Labelled nodes cluster in one direction, unlabelled in another.
    lab = torch.zeros(40, dtype=torch.bool)
    lab[:10] = True
    feats = torch.rand(40, 6) * 0.1
    feats[:10, 0] += 1.0
    feats[10:, 1] += 1.0
    scores, hidden = train_sampler(feats, lab, steps=100, hidden=16)
    assert hidden.shape == (40, 16)
    assert scores[lab].min() > scores[~lab].max()


def _brute_kcenter_cost(feats, centres, picked):
    chosen = centres.clone()
    chosen[list(picked)] = True
    return torch.cdist(feats, feats[chosen]).min(1).values.max()


def test_kcenter_greedy_matches_loop_and_is_2_approx_of_brute_force():
    torch.manual_seed(3)
    feats = torch.randn(9, 2, dtype=torch.float64)
    centres = torch.zeros(9, dtype=torch.bool)
    centres[0] = True
    picked = kcenter_greedy(feats, centres, 3).tolist()
    # Loop reference of the greedy rule.
    chosen, ref = [0], []
    for _ in range(3):
        d = [min(float((feats[i] - feats[c]).norm()) for c in chosen) for i in range(9)]
        i = max((i for i in range(9) if i not in chosen), key=lambda i: d[i])
        chosen.append(i)
        ref.append(i)
    assert picked == ref
    best = min(
        _brute_kcenter_cost(feats, centres, combo)
        for combo in itertools.combinations(range(1, 9), 3)
    )
    assert _brute_kcenter_cost(feats, centres, picked) <= 2 * best + 1e-12
    # With two well separated clusters and no centres, the greedy covers both.
    two = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 10.0)]) + torch.rand(10, 2) * 0.1
    pick = kcenter_greedy(two, torch.zeros(10, dtype=torch.bool), 2)
    assert {int(p) // 5 for p in pick} == {0, 1}
    with pytest.raises(ConfigError, match="exceeds"):
        kcenter_greedy(feats, centres, 9)


def test_uncertainty_select_picks_nearest_to_margin():
    scores = torch.tensor([0.9, 0.12, 0.5, 0.08, 0.1, 0.3, 0.11])
    cand = torch.tensor([True, True, True, True, False, True, True])
    picked = uncertainty_select(scores, cand, 3, margin=0.1).tolist()
    # |s - 0.1| over candidates: 0.8, 0.02, 0.4, 0.02, -, 0.2, 0.01 -> 6, 1, 3.
    assert picked == [6, 1, 3]


def test_results_roundtrip_and_missing(tmp_path):
    r = ActiveResult("random", 1, [50, 100], [0.5, 0.6], {"budget": 50})
    r.save(tmp_path / "active_random_seed1.json")
    (back,) = load_active_results(tmp_path)
    assert back == r
    with pytest.raises(DatasetError, match="no active_"):
        load_active_results(tmp_path / "..")


@pytest.mark.parametrize("method", ["uncertaingcn", "coregcn", "random", "coreset"])
def test_run_active_learning_tiny(method):
    g = torch.Generator().manual_seed(4)
    labels = torch.arange(10).repeat(8)
    images = torch.rand(80, 1, 8, 8, generator=g) * 0.2
    images[torch.arange(80), 0, labels // 2, labels % 8] = 1.0  # learnable signal
    data = (ImageSplit(images, labels), ImageSplit(images[:20], labels[:20]))
    r = run_active_learning(
        method,
        cycles=2,
        budget=5,
        initial=10,
        subset=30,
        epochs=1,
        widths=(4, 8),
        sampler_steps=5,
        data=data,
        progress=False,
    )
    assert r.labelled == [10, 15] and len(r.accuracy) == 2
    with pytest.raises(ConfigError, match="exceed"):
        run_active_learning(method, cycles=20, budget=10, initial=10, data=data)


def test_unknown_method():
    with pytest.raises(ConfigError, match="unknown active-learning method"):
        run_active_learning("badge")
