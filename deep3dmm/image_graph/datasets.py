"""Small image datasets that need no download: scikit-learn's bundled digits, upsampled."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImageSplit", "load_digits"]


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
