import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.datasets import ImageSplit
from deep3dmm.image_graph.fewshot import (
    EpisodeSampler,
    FewShotGNN,
    GraphConvFamily,
    LearnedAdjacency,
    evaluate_fewshot,
    train_fewshot,
)


def test_learned_adjacency_rows_sum_to_one_zero_diagonal_and_loop_reference():
    torch.manual_seed(0)
    adj = LearnedAdjacency(5, hidden=8).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64)
    a = adj(x)
    assert a.shape == (3, 6, 6)
    torch.testing.assert_close(a.sum(-1), torch.ones(3, 6, dtype=torch.float64))
    assert torch.all(torch.diagonal(a, dim1=1, dim2=2) == 0)
    for b in range(3):
        for i in range(6):
            scores = torch.stack([adj.mlp((x[b, i] - x[b, j]).abs())[0] for j in range(6)])
            others = [j for j in range(6) if j != i]
            ref = torch.softmax(scores[others], 0)
            torch.testing.assert_close(a[b, i, others], ref)
    assert "in_dim=5" in repr(adj)


def test_graph_conv_family_is_identity_plus_adjacency_operator():
    torch.manual_seed(1)
    gc = GraphConvFamily(4, 3).double()
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    a = torch.rand(2, 5, 5, dtype=torch.float64)
    w_i, w_a = gc.linear.weight[:, :4], gc.linear.weight[:, 4:]
    ref = x @ w_i.T + (a @ x) @ w_a.T + gc.linear.bias
    torch.testing.assert_close(gc(x, a), ref)


def _split(classes=5, per_class=6, size=8):
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(classes).repeat_interleave(per_class)
    return ImageSplit(torch.rand(len(labels), 1, size, size, generator=g), labels)


def test_episode_sampler_shapes_and_labels():
    split = _split()
    ep = EpisodeSampler(
        split, [0, 1, 2, 3, 4], n_way=3, k_shot=2, queries_per_class=2, seed=0
    ).sample(4)
    assert ep.support.shape == (4, 6, 1, 8, 8) and ep.query.shape == (4, 6, 1, 8, 8)
    assert ep.support_labels[0].tolist() == [0, 0, 1, 1, 2, 2]
    # Every support/query image of one episode label comes from one original class.
    flat = split.images.flatten(1)
    for e in range(4):
        for part, lab in ((ep.support, ep.support_labels), (ep.query, ep.query_labels)):
            idx = torch.cdist(part[e].flatten(1), flat).argmin(1)
            orig = split.labels[idx]
            for c in range(3):
                assert len(set(orig[lab[e] == c].tolist())) == 1
    with pytest.raises(ConfigError, match="need >= 6 classes"):
        EpisodeSampler(split, [0, 1, 2, 3, 4], n_way=6)
    with pytest.raises(ConfigError, match="fewer than k_shot"):
        EpisodeSampler(split, [0, 1, 2], n_way=3, k_shot=6)


def test_fewshot_gnn_shapes_and_support_order_invariance():
    torch.manual_seed(3)
    model = FewShotGNN(3, widths=(8, 16), image_size=8, hidden=8).eval()
    ep = EpisodeSampler(_split(), [0, 1, 2, 3], n_way=3, k_shot=2, seed=1).sample(2)
    logits = model(ep.support, ep.support_labels, ep.query)
    assert logits.shape == (2, 3, 3)
    perm = torch.randperm(6)
    logits_p = model(ep.support[:, perm], ep.support_labels[:, perm], ep.query)
    torch.testing.assert_close(logits_p, logits, atol=1e-5, rtol=1e-5)
    assert "n_way=3" in repr(model)


def test_train_and_evaluate_run():
    split = _split(per_class=10)
    sampler = EpisodeSampler(split, [0, 1, 2, 3, 4], n_way=3, k_shot=1, seed=0)
    model = train_fewshot(sampler, iterations=3, batch=4, progress=False, widths=(8, 16), hidden=8)
    acc, ci = evaluate_fewshot(model, sampler, episodes=20, batch=8)
    assert 0.0 <= acc <= 1.0 and ci >= 0
