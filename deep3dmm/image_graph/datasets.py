"""Small image datasets that need no download: scikit-learn's bundled digits, upsampled.

:func:`transformed_digits` warps every image by a seeded random similarity transform
(``F.affine_grid`` / ``F.grid_sample``): the task of Dai et al. 2017, Sec. 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImageSplit", "load_digits", "transformed_digits"]


@dataclass(frozen=True)
class ImageSplit:
    """Images ``(N, 1, H, W)`` float32 in [0, 1] and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(
    size: int = 32, *, test_fraction: float = 0.25, seed: int = 0
) -> tuple[ImageSplit, ImageSplit]:
    """The 1,797 8x8 digits of scikit-learn, bilinearly upsampled to ``size`` x ``size``.

    The split is stratified by class and deterministic for ``seed``.

    Returns:
        ``(train, test)`` splits.
    """
    from deep3dmm.optional import require

    data = require("sklearn.datasets", feature="the digits dataset").load_digits()
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    labels = torch.from_numpy(data.target.astype(np.int64))
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in range(10):
        members = np.flatnonzero(data.target == label)
        test[rng.choice(members, int(round(test_fraction * len(members))), replace=False)] = True
    train_idx = torch.from_numpy(np.flatnonzero(~test))
    test_idx = torch.from_numpy(np.flatnonzero(test))
    return (
        ImageSplit(images[train_idx].contiguous(), labels[train_idx]),
        ImageSplit(images[test_idx].contiguous(), labels[test_idx]),
    )


def transformed_digits(
    split: ImageSplit,
    *,
    max_rotation: float = 60.0,
    scale_range: tuple[float, float] = (0.6, 1.3),
    seed: int = 0,
) -> ImageSplit:
    """Rotate each image by U(-max_rotation, max_rotation) degrees and scale it by
    U(scale_range) about the centre (zeros outside), deterministically for ``seed``.

    Shapes:
        split.images (N, C, H, W) -> (N, C, H, W).
    """  # noqa: D205
    g = torch.Generator().manual_seed(seed)
    n = len(split)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_rotation)
    lo, hi = scale_range
    scale = lo + (hi - lo) * torch.rand(n, generator=g)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # output -> input map
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(theta, list(split.images.shape), align_corners=False)
    images = F.grid_sample(
        split.images, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return ImageSplit(images.clamp(0, 1).contiguous(), split.labels)
