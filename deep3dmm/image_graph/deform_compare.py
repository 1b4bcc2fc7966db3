"""Plain vs deformable CNN on digits with random scale and rotation (Dai et al. 2017, Sec. 4).

:func:`transformed_digits` warps every image by a seeded random similarity transform
(``F.affine_grid`` / ``F.grid_sample``); :func:`deformable_small_cnn` is the toolkit's
:class:`~deep3dmm.image_graph.backbone.SmallCNN` with the 3x3 convolutions of its last
stages replaced by :class:`~deep3dmm.image_graph.deformable.DeformConv2d` (offsets start at
zero, so it starts as the plain network); :func:`compare_deformable` trains both on the same
data and seeds and reports test accuracies.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits
from deep3dmm.image_graph.deformable import DeformConv2d
from deep3dmm.image_graph.train import evaluate_accuracy, fit_classifier

__all__ = ["compare_deformable", "deformable_small_cnn", "transformed_digits"]

log = logging.getLogger(__name__)


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


def deformable_small_cnn(
    *,
    deformable_stages: int = 2,
    modulated: bool = False,
    widths: tuple[int, ...] = (16, 32, 64),
    image_size: int = 32,
    num_classes: int = 10,
) -> SmallCNN:
    """A :class:`SmallCNN` whose last ``deformable_stages`` convs are :class:`DeformConv2d`."""
    if not 0 <= deformable_stages <= len(widths):
        raise ConfigError(
            f"deformable_stages={deformable_stages} must be in [0, {len(widths)}]",
            fix="choose how many of the CNN's stages become deformable",
        )
    model = SmallCNN(1, num_classes, widths, image_size=image_size)
    for stage in list(model.stages)[len(widths) - deformable_stages :]:
        conv: nn.Conv2d = stage[0]
        stage[0] = DeformConv2d(
            conv.in_channels, conv.out_channels, 3, padding=1, modulated=modulated, bias=False
        )
    return model


def compare_deformable(
    *,
    seeds: tuple[int, ...] = (0, 1),
    epochs: int = 12,
    image_size: int = 32,
    widths: tuple[int, ...] = (16, 32, 64),
    deformable_stages: int = 2,
    modulated: bool = False,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train plain and deformable CNNs on transformed digits; test accuracy per seed.

    Train and test images get independent random transforms (seeds 1 and 2).

    Returns:
        ``{"plain": [acc per seed], "deformable": [acc per seed]}``.
    """
    train, test = load_digits(image_size, seed=0)
    train = transformed_digits(train, seed=1)
    test = transformed_digits(test, seed=2)
    out: dict[str, list[float]] = {"plain": [], "deformable": []}
    for seed in seeds:
        for name in out:
            torch.manual_seed(seed)
            if name == "plain":
                model = SmallCNN(1, 10, widths, image_size=image_size)
            else:
                model = deformable_small_cnn(
                    deformable_stages=deformable_stages,
                    modulated=modulated,
                    widths=widths,
                    image_size=image_size,
                )
            fit_classifier(
                model, train, test, epochs=epochs, batch_size=64, seed=seed, progress=progress
            )
            out[name].append(evaluate_accuracy(model, test))
            log.info("%s seed %d: test accuracy %.4f", name, seed, out[name][-1])
    return out
