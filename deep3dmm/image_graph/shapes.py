"""A procedural shapes dataset for fast tests: filled circles, squares and triangles.

Each image holds one shape (label 0 circle, 1 square, 2 triangle) with a random centre,
size and rotation, rasterised by vectorised half-plane / distance tests over the pixel
grid (no loops over images), plus optional Gaussian pixel noise. Deterministic for
``seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.datasets import ImageSplit

__all__ = ["SHAPE_NAMES", "make_shapes", "load_shapes"]

SHAPE_NAMES = ("circle", "square", "triangle")


def make_shapes(n: int, size: int = 32, *, seed: int = 0, noise: float = 0.05) -> ImageSplit:
    """``n`` images ``(n, 1, size, size)`` in [0, 1] with balanced labels ``0, 1, 2``.

    Args:
        n: number of images.
        size: image side in pixels (>= 8).
        seed: random seed.
        noise: standard deviation of additive Gaussian pixel noise (clipped to [0, 1]).
    """
    if n < 1 or size < 8:
        raise ConfigError(f"make_shapes: need n >= 1 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 3)
    radius = rng.uniform(0.18, 0.32, n) * size  # circumradius
    centre = rng.uniform(radius[:, None] + 1, size - radius[:, None] - 1, (n, 2))
    angle = rng.uniform(0, 2 * np.pi, n)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dy = ys[None] - centre[:, 0, None, None]  # (n, H, W)
    dx = xs[None] - centre[:, 1, None, None]
    r = radius[:, None, None]
    circle = dy**2 + dx**2 <= r**2
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotated frame
    half = r / np.sqrt(2)
    square = (np.abs(u) <= half) & (np.abs(v) <= half)
    # equilateral triangle: inside all three half-planes at distance r/2 from the centre
    triangle = np.ones_like(circle)
    for k in range(3):
        theta = angle[:, None, None] + np.pi / 2 + k * 2 * np.pi / 3
        triangle &= np.cos(theta) * dx + np.sin(theta) * dy <= r / 2
    masks = np.where(
        labels[:, None, None] == 0, circle, np.where(labels[:, None, None] == 1, square, triangle)
    )
    images = masks.astype(np.float32)
    if noise > 0:
        images = np.clip(images + rng.normal(0, noise, images.shape), 0, 1).astype(np.float32)
    return ImageSplit(torch.from_numpy(images)[:, None].contiguous(), torch.from_numpy(labels))


def load_shapes(
    n_train: int = 300, n_test: int = 150, size: int = 32, *, seed: int = 0
) -> tuple[ImageSplit, ImageSplit]:
    """Independent train and test sets (different seeds) of :func:`make_shapes`."""
    return make_shapes(n_train, size, seed=2 * seed), make_shapes(n_test, size, seed=2 * seed + 1)
