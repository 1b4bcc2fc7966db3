"""CNN <-> graph interconnects: gather features at keypoints, scatter node features back.

- :func:`cnn_to_graph`: bilinear sampling of a feature map at the keypoints (rescaled
  from the score-map grid to the feature-map grid, so the two may differ in resolution),
  multiplied by the keypoint scores so gradients reach the score head, plus an adjacency
  built from the keypoint positions.
- :func:`graph_to_cnn`: the inverse direction; each node is written into the cell of a
  zero map ``(H', W')`` that contains its (rescaled) position; several nodes in one cell
  are averaged. Linear in the node features, hence differentiable w.r.t. them.

Coordinates are pixel centres at integers; rescaling from size ``S`` to ``S'`` is
``c' = (c + 1/2) S'/S - 1/2`` (the ``align_corners=False`` convention of
:func:`torch.nn.functional.interpolate`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph import adjacency as adj
from deep3dmm.image_graph.keypoints import KeypointSet

__all__ = ["rescale_coords", "gather_at", "cnn_to_graph", "graph_to_cnn", "ADJACENCY"]

#: Adjacency builders from keypoint coordinates ``(B, n, 2)`` (in score-map pixels).
ADJACENCY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "inverse_distance": adj.inverse_distance,
    "gaussian": adj.gaussian_kernel,
    "knn": adj.knn_adjacency,
}


def rescale_coords(
    coords: torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]
) -> torch.Tensor:
    """``(row, col)`` pixel coordinates ``(..., 2)`` on a ``from_size`` grid -> ``to_size``."""
    scale = torch.tensor(
        [to_size[0] / from_size[0], to_size[1] / from_size[1]],
        dtype=coords.dtype,
        device=coords.device,
    )
    return (coords + 0.5) * scale - 0.5


def gather_at(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``features`` ``(B, C, H, W)`` at ``coords`` ``(B, n, 2)`` -> ``(B, n, C)``.

    ``coords`` are ``(row, col)`` in pixels of the feature map itself; at integer
    coordinates this is an exact gather. Out-of-range positions read zeros.
    """
    height, width = features.shape[-2:]
    # grid_sample wants (x, y) in [-1, 1] with align_corners=False: x = (2 col + 1) / W - 1.
    grid = torch.stack(
        ((2 * coords[..., 1] + 1) / width - 1, (2 * coords[..., 0] + 1) / height - 1), dim=-1
    )
    sampled = F.grid_sample(
        features, grid[:, :, None], mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B, C, n, 1)
    return sampled[..., 0].transpose(1, 2)


def cnn_to_graph(
    features: torch.Tensor,
    keypoints: KeypointSet,
    *,
    adjacency: str | Callable[[torch.Tensor], torch.Tensor] = "inverse_distance",
    weight_by_scores: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes at the keypoints and their adjacency.

    Args:
        features: ``(B, C, H, W)`` feature map (any resolution).
        keypoints: selected keypoints on their own grid ``keypoints.size``.
        adjacency: a name from :data:`ADJACENCY` or a callable ``coords -> (B, n, n)``;
            computed from the score-map coordinates.
        weight_by_scores: multiply each node by its keypoint score (gradients then reach
            the score head).

    Returns:
        ``nodes (B, n, C)`` and ``adjacency (B, n, n)``.
    """
    if features.dim() != 4 or features.shape[0] != keypoints.coords.shape[0]:
        raise ConfigError(
            f"cnn_to_graph: expected features (B={keypoints.coords.shape[0]}, C, H, W), "
            f"got {tuple(features.shape)}"
        )
    if isinstance(adjacency, str):
        if adjacency not in ADJACENCY:
            raise ConfigError(
                f"cnn_to_graph: unknown adjacency {adjacency!r}",
                fix=f"choose one of {sorted(ADJACENCY)}",
            )
        adjacency = ADJACENCY[adjacency]
    coords = rescale_coords(keypoints.coords, keypoints.size, tuple(features.shape[-2:]))
    nodes = gather_at(features, coords)  # (B, n, C)
    if weight_by_scores:
        nodes = nodes * keypoints.scores[..., None]
    return nodes, adjacency(keypoints.coords)


def graph_to_cnn(
    nodes: torch.Tensor, keypoints: KeypointSet, size: tuple[int, int]
) -> torch.Tensor:
    """Scatter node features ``(B, n, C)`` into a zero map ``(B, C, H', W')``.

    Each node lands in the cell containing its position rescaled to ``size``; cells with
    several nodes get their mean; cells without nodes stay zero.
    """
    batch, n, channels = nodes.shape
    if keypoints.coords.shape[:2] != (batch, n):
        raise ConfigError(
            f"graph_to_cnn: nodes {tuple(nodes.shape)} do not match "
            f"{tuple(keypoints.coords.shape[:2])} keypoints"
        )
    height, width = size
    cells = rescale_coords(keypoints.coords.detach(), keypoints.size, size).round().long()
    rows = cells[..., 0].clamp(0, height - 1)
    cols = cells[..., 1].clamp(0, width - 1)
    flat = rows * width + cols  # (B, n)
    out = nodes.new_zeros(batch, height * width, channels)
    out = out.scatter_add(1, flat[..., None].expand(-1, -1, channels), nodes)
    counts = nodes.new_zeros(batch, height * width).scatter_add(1, flat, nodes.new_ones(batch, n))
    out = out / counts.clamp(min=1)[..., None]
    return out.transpose(1, 2).reshape(batch, channels, height, width)
