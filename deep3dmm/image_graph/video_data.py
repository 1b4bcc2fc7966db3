"""Synthetic videos for object segmentation: one coherent object among flickering look-alikes.

Every clip has ``T`` RGB frames of ``size x size`` pixels:

- a **moving background**: smooth colour noise (low-resolution noise, bilinearly upsampled)
  that scrolls by a random velocity, plus fine pixel noise;
- the **object**: a striped shape (circle, square or triangle; two random colours, random
  stripe direction and period) that keeps its shape, size and texture and moves with a
  constant velocity: the one thing that moves coherently across frames;
- ``distractors`` **look-alikes** per frame, drawn from the same distribution (shape,
  colours, stripes, size) but re-sampled at every frame, so no single frame tells which
  shape is the object; only its recurrence across frames does.

Shapes are layered in a random depth order per frame; the mask is the object's visible
pixels. Everything is rasterised with vectorised comparisons over ``(N, T, S, H, W)``
grids (no loops over clips or pixels). Deterministic for ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError

__all__ = ["VideoSplit", "make_videos"]


@dataclass(frozen=True)
class VideoSplit:
    """Clips ``videos (N, T, 3, H, W)`` float32 in [0, 1] and ``masks (N, T, H, W)`` float32."""

    videos: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return len(self.videos)


def _shape_masks(kind, centre, radius, angle, size: int) -> np.ndarray:
    """Filled shapes on the pixel grid; every argument ``(...,)``, ``centre (..., 2)`` (row, col).

    Returns bool ``(..., size, size)``.
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dy = ys - centre[..., 0, None, None]
    dx = xs - centre[..., 1, None, None]
    r = radius[..., None, None]
    a = angle[..., None, None]
    u, v = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
    circle = dx**2 + dy**2 <= r**2
    square = (np.abs(u) <= r / np.sqrt(2)) & (np.abs(v) <= r / np.sqrt(2))
    triangle = np.ones_like(circle)
    for k in range(3):
        theta = a + np.pi / 2 + k * 2 * np.pi / 3
        triangle &= np.cos(theta) * dx + np.sin(theta) * dy <= r / 2
    kind = kind[..., None, None]
    return np.where(kind == 0, circle, np.where(kind == 1, square, triangle))


def _stripes(colours, direction, period, phase, size: int, offset) -> np.ndarray:
    """Two-colour stripes ``(..., 3, size, size)``; ``offset (..., 2)`` moves the pattern."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dy = ys - offset[..., 0, None, None]
    dx = xs - offset[..., 1, None, None]
    d = direction[..., None, None]
    t = np.cos(d) * dx + np.sin(d) * dy
    on = np.sin(2 * np.pi * t / period[..., None, None] + phase[..., None, None]) > 0
    c0, c1 = colours[..., 0, :, None, None], colours[..., 1, :, None, None]
    return np.where(on[..., None, :, :], c0, c1)


def make_videos(
    n: int,
    *,
    frames: int = 4,
    size: int = 32,
    distractors: int = 2,
    seed: int = 0,
) -> VideoSplit:
    """``n`` clips of ``frames`` frames with one coherent object and re-sampled look-alikes.

    Args:
        n: number of clips.
        frames: frames per clip ``T`` (>= 2).
        size: frame side in pixels (>= 16).
        distractors: look-alike shapes per frame (>= 0).
        seed: random seed.
    """
    if n < 1 or frames < 2 or size < 16 or distractors < 0:
        raise ConfigError(
            f"make_videos: need n >= 1, frames >= 2, size >= 16, distractors >= 0; got n={n}, "
            f"frames={frames}, size={size}, distractors={distractors}"
        )
    rng = np.random.default_rng(seed)
    t_idx = np.arange(frames, dtype=np.float32)
    s = 1 + distractors  # shape 0 is the object
    shape = (n, frames, s)

    # Per-shape appearance: the object's is drawn once per clip and repeated over frames.
    def draw(fn, extra=()):
        values = fn((n, frames, s, *extra))
        values[:, :, 0] = values[:, :1, 0]
        return values

    kind = draw(lambda sh: rng.integers(0, 3, sh))
    radius = draw(lambda sh: rng.uniform(0.14, 0.22, sh) * size).astype(np.float32)
    angle = draw(lambda sh: rng.uniform(0, 2 * np.pi, sh)).astype(np.float32)
    colours = draw(lambda sh: rng.uniform(0, 1, sh), (2, 3)).astype(np.float32)
    direction = draw(lambda sh: rng.uniform(0, np.pi, sh)).astype(np.float32)
    period = draw(lambda sh: rng.uniform(3, 6, sh)).astype(np.float32)
    phase = draw(lambda sh: rng.uniform(0, 2 * np.pi, sh)).astype(np.float32)
    # Positions: look-alikes anywhere at every frame; the object on a straight line.
    margin = 0.22 * size
    centre = rng.uniform(margin, size - margin, (*shape, 2)).astype(np.float32)
    start = rng.uniform(margin, size - margin, (n, 2))
    end = rng.uniform(margin, size - margin, (n, 2))
    path = start[:, None] + (end - start)[:, None] * (t_idx[None, :, None] / (frames - 1))
    centre[:, :, 0] = path
    mask = _shape_masks(kind, centre, radius, angle, size)  # (N, T, S, H, W)
    texture = _stripes(colours, direction, period, phase, size, centre)  # (N, T, S, 3, H, W)

    # Scrolling smooth background and random depth order per frame.
    low = torch.from_numpy(rng.uniform(0, 1, (n, 3, 8, 8)).astype(np.float32))
    big = F.interpolate(low, size=(2 * size, 2 * size), mode="bicubic", align_corners=False)
    big = big.clamp(0, 1).numpy()
    v0 = rng.uniform(0, size / 2, (n, 2))
    vel = rng.uniform(-size / 8, size / 8, (n, 2))
    off = np.clip(np.round(v0[:, None] + vel[:, None] * t_idx[None, :, None]), 0, size).astype(int)
    rows = off[..., 0, None] + np.arange(size)  # (N, T, H)
    cols = off[..., 1, None] + np.arange(size)  # (N, T, W)
    nn_, cc = np.arange(n)[:, None, None, None, None], np.arange(3)[None, None, :, None, None]
    background = big[nn_, cc, rows[:, :, None, :, None], cols[:, :, None, None, :]]  # (N,T,3,H,W)

    depth = rng.uniform(0, 1, shape)
    score = np.where(mask, depth[..., None, None], -1.0)  # (N, T, S, H, W)
    top = score.argmax(axis=2)  # (N, T, H, W)
    covered = mask.any(axis=2)
    chosen = np.take_along_axis(texture, top[:, :, None, None], axis=2)[:, :, 0]  # (N,T,3,H,W)
    video = np.where(covered[:, :, None], chosen, background)
    video = np.clip(video + rng.normal(0, 0.03, video.shape), 0, 1).astype(np.float32)
    target = (covered & (top == 0)).astype(np.float32)
    return VideoSplit(torch.from_numpy(video), torch.from_numpy(target))
