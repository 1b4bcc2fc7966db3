"""Synthetic captioning data: 1-3 coloured shapes on a 3x3 layout, with template captions.

Each RGB image (``size x size``, noisy grey background) holds 1-3 shapes (circle, square,
triangle) in distinct cells of a 3x3 layout, each a colour out of red, green, blue, yellow,
with a small random jitter of size and position. The caption names the shapes in reading
order (row by row, left to right) and joins consecutive ones by their relation, ``left of``
when they share a row, else ``above``::

    a red circle
    a red circle left of a blue square
    a yellow triangle above a green circle left of a red square

so a caption is a deterministic function of the image. :class:`Vocabulary` maps words to
integer ids (``<pad>`` 0, ``<start>``, ``<end>``, ``<unk>``, then the words sorted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from deep3dmm.errors import ConfigError

__all__ = ["CAPTION_COLOURS", "CaptionSplit", "Vocabulary", "make_captions"]

CAPTION_COLOURS = {
    "red": (0.9, 0.15, 0.1),
    "green": (0.1, 0.75, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
SHAPES = ("circle", "square", "triangle")
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")


@dataclass(frozen=True)
class CaptionSplit:
    """Images ``(N, 3, H, W)`` float32 in [0, 1] and their captions (lists of words)."""

    images: torch.Tensor
    captions: list[list[str]]

    def __len__(self) -> int:
        return len(self.captions)


class Vocabulary:
    """Word <-> id map with the special tokens ``<pad>`` (0), ``<start>``, ``<end>``, ``<unk>``.

    Args:
        words: the words (specials are added; duplicates removed; sorted).
    """

    def __init__(self, words: Iterable[str]) -> None:
        words = sorted(set(words) - set(SPECIALS))
        if not words:
            raise ConfigError(
                "Vocabulary: no words (the vocabulary is empty)",
                fix="build it from non-empty captions, or lower the minimum word count",
            )
        self.itos = [*SPECIALS, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad, self.start, self.end, self.unk = 0, 1, 2, 3

    @classmethod
    def build(cls, captions: Iterable[Sequence[str]], *, min_count: int = 1) -> Vocabulary:
        """The words occurring at least ``min_count`` times in ``captions``."""
        counts = Counter(w for c in captions for w in c)
        return cls(w for w, n in counts.items() if n >= min_count)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, captions: Sequence[Sequence[str]], length: int | None = None) -> torch.Tensor:
        """``<start> w1 .. wn <end> <pad>..`` ids ``(N, length)``; default length fits all."""
        length = length or max(len(c) for c in captions) + 2
        out = torch.full((len(captions), length), self.pad, dtype=torch.long)
        for i, c in enumerate(captions):
            ids = [self.start, *(self.stoi.get(w, self.unk) for w in c), self.end][:length]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Words up to the first ``<end>`` (``<start>`` and ``<pad>`` skipped)."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end:
                break
            if i not in (self.pad, self.start):
                words.append(self.itos[i])
        return words


def make_captions(n: int, size: int = 48, *, seed: int = 0) -> CaptionSplit:
    """``n`` images with 1-3 shapes and their template captions, deterministic for ``seed``.

    Args:
        n: number of images.
        size: image side in pixels (>= 24).
        seed: random seed.
    """
    if n < 1 or size < 24:
        raise ConfigError(f"make_captions: need n >= 1 and size >= 24, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 4, n)  # shapes per image
    cells = np.argsort(rng.random((n, 9)), axis=1)[:, :3]  # distinct cells, first `count` used
    cells = np.sort(np.where(np.arange(3) < count[:, None], cells, 9), axis=1)  # reading order
    kind = rng.integers(0, 3, (n, 3))
    colour = rng.integers(0, len(CAPTION_COLOURS), (n, 3))
    cell = size / 3
    radius = rng.uniform(0.27, 0.36, (n, 3)) * cell
    centre = (np.stack((cells // 3, cells % 3), -1) + 0.5) * cell
    centre = centre + rng.uniform(-0.1, 0.1, (n, 3, 2)) * cell
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dy = ys - centre[..., 0, None, None]  # (n, 3, H, W)
    dx = xs - centre[..., 1, None, None]
    r = radius[..., None, None]
    shape = np.where(
        kind[..., None, None] == 0,
        dx**2 + dy**2 <= r**2,
        np.where(
            kind[..., None, None] == 1,
            (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r),
            (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) / np.sqrt(3)),  # upright triangle
        ),
    )
    shape &= (np.arange(3) < count[:, None])[..., None, None]
    palette = np.array(list(CAPTION_COLOURS.values()))
    rgb = palette[colour] + rng.uniform(-0.08, 0.08, (n, 3, 3))  # (n, 3 shapes, 3)
    background = 0.5 + rng.uniform(-0.1, 0.1, (n, 1, 1, 1))
    image = np.broadcast_to(background, (n, 3, size, size)).copy()
    for k in range(3):  # at most three shapes, never overlapping (distinct cells)
        image = np.where(shape[:, k, None], rgb[:, k, :, None, None], image)
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)
    names = list(CAPTION_COLOURS)
    captions = []
    for i in range(n):
        words: list[str] = []
        for k in range(count[i]):
            if k:
                same_row = cells[i, k] // 3 == cells[i, k - 1] // 3
                words += ["left", "of"] if same_row else ["above"]
            words += ["a", names[colour[i, k]], SHAPES[kind[i, k]]]
        captions.append(words)
    return CaptionSplit(torch.from_numpy(image), captions)
