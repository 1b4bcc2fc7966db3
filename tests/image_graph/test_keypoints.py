import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.interconnect import cnn_to_graph
from deep3dmm.image_graph.keypoints import (
    CoordinateRegression,
    GlobalCompatibility,
    MaxPoolNMS,
    TopKAttention,
)


def _selectors(c):
    return [
        TopKAttention(c, hidden=8),
        MaxPoolNMS(c, window=4, hidden=8),
        CoordinateRegression(c, cell=4, per_cell=2, hidden=8),
        GlobalCompatibility(c, normalise="sigmoid"),
        GlobalCompatibility(c, normalise="softmax"),
    ]


@pytest.mark.parametrize("index", range(5))
def test_shapes_and_gradients_reach_the_score_head(index):
    torch.manual_seed(0)
    selector = _selectors(6)[index]
    features = torch.randn(3, 6, 16, 16, requires_grad=True)
    kp = selector(features, 7)
    assert kp.coords.shape == (3, 7, 2) and kp.scores.shape == (3, 7)
    assert kp.indices.shape == (3, 7) and kp.indices.dtype == torch.int64
    assert kp.size == (16, 16) and kp.score_map.shape == (3, 1, 16, 16)
    assert (kp.coords >= -0.5).all() and (kp.coords <= 15.5).all()
    nodes, _ = cnn_to_graph(features, kp)
    nodes.sum().backward()
    head_params = [p for name, p in selector.named_parameters()]
    assert all(p.grad is not None for p in head_params)
    assert sum(p.grad.abs().sum() for p in head_params) > 0
    assert features.grad.abs().sum() > 0


def test_topk_selects_the_largest_scores_and_indices_match_coords():
    score = torch.rand(2, 1, 5, 6)
    kp = TopKAttention(1).select(score, 4)
    flat = score.flatten(1)
    expected = flat.sort(dim=1, descending=True).values[:, :4]
    torch.testing.assert_close(kp.scores, expected)
    torch.testing.assert_close(flat.gather(1, kp.indices), kp.scores)
    torch.testing.assert_close(kp.coords[..., 0] * 6 + kp.coords[..., 1], kp.indices.float())


def _blob(batch=4, size=32):
    """A score map with one bright Gaussian blob per image at a random place."""
    g = torch.Generator().manual_seed(1)
    centre = torch.randint(6, size - 6, (batch, 2), generator=g).float()
    r = torch.arange(size).float()
    d2 = (r.view(1, -1, 1) - centre[:, 0, None, None]) ** 2 + (
        r.view(1, 1, -1) - centre[:, 1, None, None]
    ) ** 2
    return (torch.exp(-d2 / 18.0) + 0.01 * torch.rand(batch, size, size, generator=g))[:, None]


def test_topk_clusters_where_maxpool_nms_spreads():
    """The known weakness of TopKAttention: its points crowd onto the most salient blob."""
    score = _blob()
    topk = TopKAttention(1).select(score, 8)
    nms = MaxPoolNMS(1, window=8).select(score, 8)

    def spread(coords):  # mean distance to the centroid, per image, averaged
        return (coords - coords.mean(1, keepdim=True)).norm(dim=-1).mean().item()

    peak = score.flatten(1).argmax(1)
    peak = torch.stack((peak // 32, peak % 32), -1).float()
    # Every top-k point lies within 2 pixels of the peak; the NMS points are 3x as spread.
    assert (topk.coords - peak[:, None]).norm(dim=-1).max() <= 2
    assert spread(nms.coords) > 3 * spread(topk.coords)


@pytest.mark.parametrize("window", [2, 4, 8, 16])
def test_maxpool_nms_never_two_points_in_one_window(window):
    torch.manual_seed(window)
    score = torch.rand(5, 1, 32, 32) ** 4
    score[:, :, 3:9, 3:9] += 5  # a bright region that would attract all top-k points
    n = (32 // window) ** 2
    kp = MaxPoolNMS(1, window=window).select(score, n)
    windows = (kp.coords[..., 0] // window) * 100 + kp.coords[..., 1] // window
    for b in range(5):
        assert windows[b].unique().numel() == n
    # each point is the maximum of its window
    pooled = torch.nn.functional.max_pool2d(score, window).flatten(1)
    wid = (kp.coords[..., 0] // window) * (32 // window) + kp.coords[..., 1] // window
    torch.testing.assert_close(kp.scores, pooled.gather(1, wid.long()))


def test_maxpool_nms_partial_windows_and_too_many_points():
    score = torch.rand(2, 1, 10, 10)
    kp = MaxPoolNMS(1, window=4).select(score, 9)  # ceil(10/4)^2 = 9 windows
    assert kp.coords.shape == (2, 9, 2)
    with pytest.raises(ConfigError, match="cannot select n=10 keypoints from 9 windows"):
        MaxPoolNMS(1, window=4).select(score, 10)


def test_coordinate_regression_positions_stay_in_their_cell():
    torch.manual_seed(0)
    sel = CoordinateRegression(3, cell=4, per_cell=1, hidden=4)
    kp = sel(torch.randn(2, 3, 16, 16), 16)  # every cell's keypoint
    cells = (kp.coords + 0.5) // 4
    flat = cells[..., 0] * 4 + cells[..., 1]
    assert all(flat[b].unique().numel() == 16 for b in range(2))
    pred = sel.predict(torch.randn(1, 3, 16, 16))
    assert pred.shape == (1, 1, 3, 4, 4) and (pred > 0).all() and (pred < 1).all()
    with pytest.raises(ConfigError, match="not divisible by cell=4"):
        sel(torch.randn(1, 3, 10, 10), 2)


def test_global_compatibility_matches_formula():
    torch.manual_seed(0)
    sel = GlobalCompatibility(4, global_channels=3, normalise="softmax")
    local = torch.randn(2, 4, 5, 5)
    g = torch.randn(2, 3)
    a = sel.score(local, g)
    gp = g @ sel.project.weight.T + sel.project.bias
    c = torch.stack(
        [
            torch.stack([(local[b, :, i, j] + gp[b]) @ sel.u for i in range(5) for j in range(5)])
            for b in range(2)
        ]
    )
    torch.testing.assert_close(a.flatten(1), torch.softmax(c, dim=1))
    torch.testing.assert_close(a.flatten(1).sum(1), torch.ones(2))
    torch.testing.assert_close(sel.attend(local, g), (a * local).sum(dim=(2, 3)))
    with pytest.raises(ConfigError, match="normalise must be"):
        GlobalCompatibility(4, normalise="tanh")


def test_reprs_and_bad_input():
    assert "window=8" in repr(MaxPoolNMS(4))
    assert "cell=16, per_cell=2" in repr(CoordinateRegression(4, cell=16, per_cell=2))
    with pytest.raises(ConfigError, match=r"expected features \(B, 4, H, W\)"):
        TopKAttention(4)(torch.randn(1, 3, 8, 8), 2)
    with pytest.raises(ConfigError, match="cannot select n=65"):
        TopKAttention(1).select(torch.rand(1, 1, 8, 8), 65)
