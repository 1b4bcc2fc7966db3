r"""Data terms of fitting, in millimetres, with correspondences from scipy ``cKDTree``.

- registered target (known correspondence): mean per-vertex distance
  :math:`\frac1V \sum_v \lVert x_v - y_v \rVert`, the evaluation metric itself;
- scan / point cloud: two-sided nearest-neighbour distances, scan -> model
  (every scan point to its nearest model vertex, point-to-plane with the model's
  normals, plus a fraction ``tangent`` of the in-plane part) and model -> scan
  (every model vertex to its nearest scan point, with the scan's normals when it has
  faces); partial scans use the scan -> model side only, so missing regions come from
  the model;
- robust kernels on each distance :math:`d` (mm): ``trimmed`` (drop the largest
  ``trim`` fraction, then the mean) or ``geman-mcclure``
  :math:`\rho(d) = \sigma d^2 / (d^2 + \sigma^2)`.

Correspondences are found without gradients (a k-d tree query over all points at
once) and held fixed while the loss is differentiated.
"""

from __future__ import annotations

import numpy as np
import torch

from deep3dmm.errors import ConfigError

__all__ = [
    "KERNELS",
    "vertex_normals",
    "robust_mean",
    "registered_loss",
    "nearest",
    "point_distances",
    "landmark_loss",
]

KERNELS = ("trimmed", "geman-mcclure")


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals ``(B, V, 3)`` of meshes ``(B, V, 3)``, faces ``(F, 3)``."""
    corners = vertices[:, faces]  # (B, F, 3, 3)
    face_normals = torch.linalg.cross(
        corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1
    )  # (B, F, 3)
    normals = torch.zeros_like(vertices)
    for k in range(3):  # the three corners, not a loop over vertices
        normals = normals.index_add(1, faces[:, k], face_normals)
    return torch.nn.functional.normalize(normals, dim=-1)


def robust_mean(d: torch.Tensor, *, kernel: str, sigma: float, trim: float) -> torch.Tensor:
    """Robust mean of distances ``(B, N)`` in mm -> ``(B,)``."""
    if kernel == "trimmed":
        keep = max(1, int(round(d.shape[1] * (1.0 - trim))))
        return torch.topk(d, keep, dim=1, largest=False).values.mean(dim=1)
    if kernel == "geman-mcclure":
        return (sigma * d**2 / (d**2 + sigma**2)).mean(dim=1)
    raise ConfigError(f"unknown robust kernel {kernel!r}", fix=f"use one of {KERNELS}")


def registered_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean per-vertex distance ``(B,)`` in mm between ``(B, V, 3)`` meshes."""
    return torch.sqrt(((x - y) ** 2).sum(-1) + 1e-12).mean(dim=1)


def nearest(tree, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest tree point of every query ``(N, 3)`` (one k-d tree query)."""
    return tree.query(queries, k=1)[1]


def point_distances(
    points: torch.Tensor, matches: torch.Tensor, normals: torch.Tensor | None, *, tangent: float
) -> torch.Tensor:
    r"""Point-to-plane distances ``(..., N)`` with an in-plane share.

    .. math:: d = \sqrt{(\Delta\cdot n)^2 + \tau (\lVert\Delta\rVert^2 - (\Delta\cdot n)^2)}

    Args:
        points: ``(..., N, 3)`` points.
        matches: ``(..., N, 3)`` their correspondences.
        normals: ``(..., N, 3)`` unit normals at the matches, or ``None`` (point-to-point).
        tangent: weight ``tau`` of the in-plane component (1 = point-to-point).
    """
    delta = points - matches
    squared = (delta**2).sum(-1)
    if normals is None:
        return torch.sqrt(squared + 1e-12)
    normal = ((delta * normals).sum(-1)) ** 2
    return torch.sqrt(normal + tangent * (squared - normal).clamp_min(0) + 1e-12)


def landmark_loss(x: torch.Tensor, matrix: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean landmark distance ``(B,)`` in mm.

    ``matrix (K, V)`` maps meshes ``x (B, V, 3)`` to landmarks, compared with ``targets (B, K, 3)``.
    """
    positions = torch.einsum("kv,bvd->bkd", matrix, x)
    return torch.sqrt(((positions - targets) ** 2).sum(-1) + 1e-12).mean(dim=1)
