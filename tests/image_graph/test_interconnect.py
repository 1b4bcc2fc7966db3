import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.adjacency import inverse_distance
from deep3dmm.image_graph.interconnect import (
    cnn_to_graph,
    gather_at,
    graph_to_cnn,
    rescale_coords,
)
from deep3dmm.image_graph.keypoints import KeypointSet, grid_coords


def _keypoints(indices, size, scores=None):
    indices = torch.as_tensor(indices)
    scores = torch.rand(indices.shape) if scores is None else scores
    return KeypointSet(
        grid_coords(indices, size[1]),
        scores,
        indices,
        size,
        torch.zeros(indices.shape[0], 1, *size),
    )


def test_gather_at_integer_cells_is_an_exact_gather():
    torch.manual_seed(0)
    features = torch.randn(2, 5, 7, 9)
    idx = torch.randperm(63)[:10].view(2, 5)
    coords = grid_coords(idx, 9)
    expected = features.flatten(2).transpose(1, 2).gather(1, idx[..., None].expand(-1, -1, 5))
    torch.testing.assert_close(gather_at(features, coords), expected)


def test_cnn_to_graph_shapes_scores_and_adjacency():
    torch.manual_seed(0)
    features = torch.randn(3, 4, 8, 8, requires_grad=True)
    kp = _keypoints(torch.stack([torch.randperm(64)[:6] for _ in range(3)]), (8, 8))
    nodes, adj = cnn_to_graph(features, kp)
    raw, _ = cnn_to_graph(features, kp, weight_by_scores=False)
    assert nodes.shape == (3, 6, 4) and adj.shape == (3, 6, 6)
    torch.testing.assert_close(nodes, raw * kp.scores[..., None])
    torch.testing.assert_close(adj, inverse_distance(kp.coords))
    nodes.sum().backward()
    assert features.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="unknown adjacency 'cosine'"):
        cnn_to_graph(features, kp, adjacency="cosine")


def test_cnn_to_graph_rescales_to_a_different_resolution():
    # A feature map at half the score-map resolution whose value is its own row index:
    # score pixel (2r + 1/2) sits on the centre of coarse row r (rescale maps it to r).
    size = (16, 16)
    coarse = torch.arange(8.0).view(1, 1, 8, 1).expand(1, 1, 8, 8).contiguous()
    coords = torch.tensor([[[2.5, 4.5], [10.5, 6.5]]])
    kp = KeypointSet(coords, torch.ones(1, 2), torch.zeros(1, 2).long(), size, torch.zeros(1))
    nodes, _ = cnn_to_graph(coarse, kp, weight_by_scores=False)
    torch.testing.assert_close(nodes[0, :, 0], torch.tensor([1.0, 5.0]))
    torch.testing.assert_close(
        rescale_coords(coords, (16, 16), (8, 8)), torch.tensor([[[1.0, 2.0], [5.0, 3.0]]])
    )
    torch.testing.assert_close(
        rescale_coords(rescale_coords(coords, (16, 16), (32, 24)), (32, 24), (16, 16)), coords
    )


def test_round_trip_recovers_gathered_features_at_distinct_cells():
    torch.manual_seed(0)
    features = torch.randn(4, 3, 6, 6)
    idx = torch.stack([torch.randperm(36)[:8] for _ in range(4)])
    kp = _keypoints(idx, (6, 6))
    nodes, _ = cnn_to_graph(features, kp, weight_by_scores=False)
    back = graph_to_cnn(nodes, kp, (6, 6))
    assert back.shape == (4, 3, 6, 6)
    again, _ = cnn_to_graph(back, kp, weight_by_scores=False)
    torch.testing.assert_close(again, nodes)
    # elsewhere the map is zero
    mask = torch.zeros(4, 36, dtype=torch.bool).scatter_(1, idx, True)
    assert (back.flatten(2).transpose(1, 2)[~mask] == 0).all()


def test_graph_to_cnn_averages_nodes_sharing_a_cell_and_is_differentiable():
    # On a 4x4 target, score pixels (0,0) and (1,1) of an 8x8 grid share cell (0,0).
    kp = _keypoints(torch.tensor([[0, 9, 63]]), (8, 8))
    nodes = torch.tensor([[[1.0, 10.0], [3.0, 20.0], [5.0, 7.0]]], requires_grad=True)
    out = graph_to_cnn(nodes, kp, (4, 4))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([2.0, 15.0]))
    torch.testing.assert_close(out[0, :, 3, 3], torch.tensor([5.0, 7.0]))
    assert out.detach().abs().sum().item() == pytest.approx(2 + 15 + 5 + 7)
    (out * torch.arange(32.0).view(1, 2, 4, 4)).sum().backward()
    # d/dnode of sum(w * out): w at the node's cell, divided by the nodes sharing it
    torch.testing.assert_close(nodes.grad, torch.tensor([[[0.0, 8.0], [0.0, 8.0], [15.0, 31.0]]]))
    with pytest.raises(ConfigError, match="do not match"):
        graph_to_cnn(torch.zeros(1, 2, 2), kp, (4, 4))
