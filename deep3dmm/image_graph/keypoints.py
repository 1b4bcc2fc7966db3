"""Keypoint selection on CNN score maps: three methods behind one interface.

Every selector scores a feature map (``score(features) -> (B, 1, H, W)``) and picks
``n`` keypoints from it (``select(score_map, n) -> KeypointSet``); ``forward(features, n)``
does both. Coordinates are ``(row, col)`` in pixels of the score-map grid (pixel centres
at integers), so they can be rescaled to any other resolution
(:func:`deep3dmm.image_graph.interconnect.rescale_coords`).

- :class:`TopKAttention` (DELF, Noh et al. ICCV 2017): a conv attention head
  ``conv1x1 -> BN -> ReLU -> conv1x1 -> softplus``; the ``n`` highest-scoring locations.
  Known weakness: neighbouring locations share receptive fields and score alike, so
  the selected points cluster on the most salient blob.
- :class:`MaxPoolNMS`: the same head, then non-maximum suppression by
  ``max_pool2d(window, return_indices=True)``: at most one point per ``window x window``
  block, the ``n`` best blocks, indices mapped back to the full-resolution grid.
- :class:`CoordinateRegression` (SuperPoint-like, DeTone et al. 2018): a conv head
  predicts, per ``cell x cell`` block, ``per_cell`` keypoints as ``(y, x, confidence)``
  through sigmoids; continuous sub-pixel positions; the confidence is the score.
- :class:`GlobalCompatibility` (Learn to Pay Attention, Jetley et al. ICLR 2018):
  ``c_i = <l_i + g, u>`` between local features ``l_i`` and a global vector ``g``,
  normalised by a softmax over locations or a sigmoid; the ``n`` best locations.

Gradients reach the score heads because the interconnect multiplies the gathered
features by the keypoint scores (:func:`~deep3dmm.image_graph.interconnect.cnn_to_graph`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError

__all__ = [
    "KeypointSet",
    "KeypointSelector",
    "AttentionHead",
    "TopKAttention",
    "MaxPoolNMS",
    "CoordinateRegression",
    "GlobalCompatibility",
    "grid_coords",
]


@dataclass(frozen=True)
class KeypointSet:
    """Selected keypoints of a batch.

    Attributes:
        coords: ``(B, n, 2)`` float ``(row, col)`` in pixels of the ``size`` grid.
        scores: ``(B, n)`` keypoint scores (differentiable w.r.t. the score head).
        indices: ``(B, n)`` int64 flat indices ``row * W + col`` into the ``size`` grid
            (of the rounded coordinates for sub-pixel keypoints).
        size: ``(H, W)`` of the grid the coordinates refer to.
        score_map: ``(B, 1, H, W)`` the map the points were chosen from.
    """

    coords: torch.Tensor
    scores: torch.Tensor
    indices: torch.Tensor
    size: tuple[int, int]
    score_map: torch.Tensor

    def __len__(self) -> int:
        return self.coords.shape[1]


def grid_coords(indices: torch.Tensor, width: int) -> torch.Tensor:
    """Flat indices ``(B, n)`` of a grid of ``width`` columns -> ``(B, n, 2)`` float (row, col)."""
    return torch.stack((indices // width, indices % width), dim=-1).to(torch.float32)


def _check_features(name: str, features: torch.Tensor, channels: int | None) -> None:
    if features.dim() != 4 or (channels is not None and features.shape[1] != channels):
        expected = "C" if channels is None else str(channels)
        raise ConfigError(
            f"{name}: expected features (B, {expected}, H, W), got {tuple(features.shape)}"
        )


def _check_count(name: str, n: int, available: int, what: str) -> None:
    if not 1 <= n <= available:
        raise ConfigError(
            f"{name}: cannot select n={n} keypoints from {available} {what}",
            fix=f"choose 1 <= n <= {available}",
        )


class AttentionHead(nn.Sequential):
    """DELF attention head: ``conv1x1 -> BN -> ReLU -> conv1x1 -> softplus``, ``(B, 1, H, W)``.

    Args:
        in_channels: feature channels ``C``.
        hidden: channels of the hidden layer.
    """

    def __init__(self, in_channels: int, hidden: int = 32):
        super().__init__(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
            nn.Softplus(),
        )


class KeypointSelector(nn.Module):
    """Base: ``forward(features, n) = select(score(features), n)``, plain top-n selection."""

    in_channels: int

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Score map ``(B, 1, H, W)`` of features ``(B, C, H, W)``."""
        raise NotImplementedError

    def select(self, score_map: torch.Tensor, n: int) -> KeypointSet:
        """The ``n`` highest-scoring locations of ``score_map`` ``(B, 1, H, W)``."""
        if score_map.dim() != 4 or score_map.shape[1] != 1:
            raise ConfigError(
                f"{type(self).__name__}: expected a score map (B, 1, H, W), "
                f"got {tuple(score_map.shape)}"
            )
        height, width = score_map.shape[-2:]
        _check_count(type(self).__name__, n, height * width, "locations")
        flat = score_map.flatten(1)  # (B, H*W)
        scores, indices = flat.topk(n, dim=1)
        return KeypointSet(grid_coords(indices, width), scores, indices, (height, width), score_map)

    def forward(self, features: torch.Tensor, n: int) -> KeypointSet:
        """Score ``features`` ``(B, C, H, W)`` and select ``n`` keypoints."""
        _check_features(type(self).__name__, features, self.in_channels)
        return self.select(self.score(features), n)


class TopKAttention(KeypointSelector):
    """DELF-style attention scores and the top-``n`` locations (points tend to cluster).

    Args:
        in_channels: feature channels ``C``.
        hidden: hidden channels of the attention head.
    """

    def __init__(self, in_channels: int, *, hidden: int = 32):
        super().__init__()
        self.in_channels = in_channels
        self.hidden = hidden
        self.head = AttentionHead(in_channels, hidden)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Softplus attention ``(B, 1, H, W)``, non-negative."""
        return self.head(features)

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_channels={self.in_channels}, hidden={self.hidden}"


class MaxPoolNMS(TopKAttention):
    """Attention scores with max-pool non-maximum suppression: one point per window at most.

    ``pooled, idx = max_pool2d(S, window, return_indices=True)`` gives the best location
    of every ``window x window`` block (``idx`` already indexes the full-resolution grid);
    the ``n`` best blocks are kept. Windows at the border may be partial (``ceil_mode``).

    Args:
        in_channels: feature channels ``C``.
        window: suppression window in score-map pixels (8 or 16 on image-resolution maps).
        hidden: hidden channels of the attention head.
    """

    def __init__(self, in_channels: int, *, window: int = 8, hidden: int = 32):
        super().__init__(in_channels, hidden=hidden)
        if window < 1:
            raise ConfigError(f"MaxPoolNMS: window must be >= 1, got {window}")
        self.window = window

    def select(self, score_map: torch.Tensor, n: int) -> KeypointSet:
        """At most one keypoint per window: the ``n`` best window maxima."""
        if score_map.dim() != 4 or score_map.shape[1] != 1:
            raise ConfigError(
                f"MaxPoolNMS: expected a score map (B, 1, H, W), got {tuple(score_map.shape)}"
            )
        height, width = score_map.shape[-2:]
        pooled, argmax = F.max_pool2d(
            score_map, self.window, return_indices=True, ceil_mode=True
        )  # (B, 1, H/w, W/w) each; argmax: flat index into H*W
        pooled, argmax = pooled.flatten(1), argmax.flatten(1)
        _check_count("MaxPoolNMS", n, pooled.shape[1], f"windows of {self.window}x{self.window}")
        _, best = pooled.topk(n, dim=1)  # (B, n) window ids
        indices = argmax.gather(1, best)
        scores = score_map.flatten(1).gather(1, indices)  # differentiable w.r.t. the head
        return KeypointSet(grid_coords(indices, width), scores, indices, (height, width), score_map)

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"{super().extra_repr()}, window={self.window}"


class CoordinateRegression(KeypointSelector):
    """Per-cell regression of ``per_cell`` keypoints ``(y, x, confidence)`` with sigmoids.

    A ``cell x cell`` strided conv predicts, for the cell at ``(i, j)``,
    ``row = (i + sigmoid(t_y)) * cell - 1/2``, ``col = (j + sigmoid(t_x)) * cell - 1/2``
    (continuous positions inside the cell, in pixels of the feature grid) and
    ``confidence = sigmoid(t_c)``. The ``n`` most confident of the ``cells * per_cell``
    predictions are kept. The score map is each cell's best confidence, spread over the cell.

    Args:
        in_channels: feature channels ``C``.
        cell: cell side in feature-map pixels (8 or 16 on image-resolution maps).
        per_cell: keypoints per cell ``h``.
        hidden: channels of the hidden conv.
    """

    def __init__(self, in_channels: int, *, cell: int = 8, per_cell: int = 1, hidden: int = 32):
        super().__init__()
        if cell < 1 or per_cell < 1:
            raise ConfigError(
                f"CoordinateRegression: cell and per_cell must be >= 1, got {cell}, {per_cell}"
            )
        self.in_channels = in_channels
        self.cell = cell
        self.per_cell = per_cell
        self.hidden = hidden
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 3 * per_cell, cell, stride=cell),
        )

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Raw per-cell predictions after sigmoids: ``(B, h, 3, H/cell, W/cell)``."""
        _check_features("CoordinateRegression", features, self.in_channels)
        height, width = features.shape[-2:]
        if height % self.cell or width % self.cell:
            raise ConfigError(
                f"CoordinateRegression: feature map {height}x{width} is not divisible "
                f"by cell={self.cell}",
                fix="choose a cell size that divides the feature-map size",
            )
        out = self.head(features)
        return torch.sigmoid(out.view(out.shape[0], self.per_cell, 3, *out.shape[-2:]))

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Each cell's best confidence, nearest-upsampled to ``(B, 1, H, W)``."""
        conf = self.predict(features)[:, :, 2].amax(dim=1, keepdim=True)
        return F.interpolate(conf, scale_factor=self.cell, mode="nearest")

    def forward(self, features: torch.Tensor, n: int) -> KeypointSet:
        """Regress all cells' keypoints and keep the ``n`` most confident."""
        pred = self.predict(features)  # (B, h, 3, Hc, Wc)
        batch, _, _, rows, cols = pred.shape
        height, width = features.shape[-2:]
        _check_count("CoordinateRegression", n, rows * cols * self.per_cell, "cell keypoints")
        cell_r = torch.arange(rows, device=pred.device, dtype=pred.dtype).view(1, 1, rows, 1)
        cell_c = torch.arange(cols, device=pred.device, dtype=pred.dtype).view(1, 1, 1, cols)
        row = (cell_r + pred[:, :, 0]) * self.cell - 0.5  # (B, h, Hc, Wc)
        col = (cell_c + pred[:, :, 1]) * self.cell - 0.5
        conf = pred[:, :, 2]
        coords = torch.stack((row, col), dim=-1).reshape(batch, -1, 2)
        conf = conf.reshape(batch, -1)
        scores, best = conf.topk(n, dim=1)
        coords = coords.gather(1, best[..., None].expand(-1, -1, 2))
        rounded = coords.detach().round().long()
        rounded[..., 0].clamp_(0, height - 1)
        rounded[..., 1].clamp_(0, width - 1)
        indices = rounded[..., 0] * width + rounded[..., 1]
        score_map = F.interpolate(
            pred[:, :, 2].amax(dim=1, keepdim=True), scale_factor=self.cell, mode="nearest"
        )
        return KeypointSet(coords, scores, indices, (height, width), score_map)

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_channels={self.in_channels}, cell={self.cell}, per_cell={self.per_cell}"


class GlobalCompatibility(KeypointSelector):
    """Learn-to-Pay-Attention scores ``c_i = <l_i + g, u>``, softmax- or sigmoid-normalised.

    ``g`` is a global descriptor of the image; by default the spatial mean of the local
    features passed through a linear layer (pass ``global_features`` to use another one,
    e.g. the backbone's penultimate vector, projected to ``C`` by ``global_channels``).

    Args:
        in_channels: local feature channels ``C``.
        global_channels: channels of the global vector (default ``C``).
        normalise: ``"softmax"`` (over the ``H*W`` locations; scores sum to 1) or
            ``"sigmoid"`` (each location in (0, 1)).
    """

    def __init__(
        self, in_channels: int, *, global_channels: int | None = None, normalise: str = "sigmoid"
    ):
        super().__init__()
        if normalise not in ("softmax", "sigmoid"):
            raise ConfigError(
                f"GlobalCompatibility: normalise must be 'softmax' or 'sigmoid', got {normalise!r}"
            )
        self.in_channels = in_channels
        self.global_channels = global_channels or in_channels
        self.normalise = normalise
        self.project = nn.Linear(self.global_channels, in_channels)
        self.u = nn.Parameter(torch.randn(in_channels) / in_channels**0.5)

    def compatibility(
        self, features: torch.Tensor, global_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw compatibilities ``<l_i + g, u>``: ``(B, 1, H, W)``."""
        _check_features("GlobalCompatibility", features, self.in_channels)
        if global_features is None:
            global_features = features.mean(dim=(2, 3))
        g = self.project(global_features)  # (B, C)
        return torch.einsum("bchw,c->bhw", features + g[..., None, None], self.u)[:, None]

    def score(
        self, features: torch.Tensor, global_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised attention ``(B, 1, H, W)``."""
        c = self.compatibility(features, global_features)
        if self.normalise == "sigmoid":
            return torch.sigmoid(c)
        return torch.softmax(c.flatten(1), dim=1).view_as(c)

    def attend(
        self, features: torch.Tensor, global_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """LTPA's attended descriptor ``g_a = sum_i a_i l_i``: ``(B, C)``."""
        a = self.score(features, global_features)
        return (a * features).sum(dim=(2, 3))

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"in_channels={self.in_channels}, global_channels={self.global_channels}, "
            f"normalise={self.normalise!r}"
        )
