r"""Activation curves of the action units / joint groups of a sequence: onset, peak, offset.

A captured expression is not one direction scaled over time: the jaw opens before
the lips stretch, the left brow lags the right. Each unit :math:`a` of a sequence
gets its own key times :math:`0 < t_{on} \le t_{p0} \le t_{p1} \le t_{off} < 1` and

.. math:: w_a(t) = \begin{cases}
    \mathrm{s}\big(\frac{t - t_{on}}{t_{p0} - t_{on}}\big) & t < t_{p0} \\
    1 & t_{p0} \le t \le t_{p1} \\
    \mathrm{s}\big(\frac{t_{off} - t}{t_{off} - t_{p1}}\big) & t > t_{p1}
    \end{cases}, \qquad \mathrm{s}(x) = 3x^2 - 2x^3 \text{ on } [0, 1]

(smoothstep ramps, clamped), so every curve is 0 at the first and the last frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["activation", "sample_key_times"]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def activation(t: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Activation curves at normalised times.

    Args:
        t: ``(T,)`` times in [0, 1].
        keys: ``(..., 4)`` key times (onset, peak start, peak end, offset).

    Returns:
        ``(..., T)`` weights in [0, 1].
    """
    t = np.asarray(t, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)[..., None]  # (..., 4, 1)
    on, p0, p1, off = keys[..., 0, :], keys[..., 1, :], keys[..., 2, :], keys[..., 3, :]
    rise = _smoothstep((t - on) / np.maximum(p0 - on, 1e-9))
    fall = _smoothstep((off - t) / np.maximum(off - p1, 1e-9))
    return np.minimum(rise, fall)


def sample_key_times(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    *,
    onset: tuple[float, float] = (0.04, 0.3),
    rise: tuple[float, float] = (0.12, 0.3),
    hold: tuple[float, float] = (0.0, 0.2),
    fall: tuple[float, float] = (0.12, 0.35),
    last: float = 0.96,
) -> np.ndarray:
    """Random key times (onset, peak start, peak end, offset), offsets at most ``last``.

    Durations are drawn uniformly from the given ranges; a curve that would end after
    ``last`` is compressed towards its onset to end there.

    Args:
        rng: the random generator (consumed in a fixed order).
        shape: leading shape of the output (e.g. subjects x sequences x units).
        onset: range of the onset time.
        rise: range of the rise duration (onset to peak start).
        hold: range of the hold duration (peak start to peak end).
        fall: range of the fall duration (peak end to offset).
        last: latest offset (< 1 keeps the last frame neutral).

    Returns:
        ``(*shape, 4)`` float64 key times in (0, 1).
    """
    start = rng.uniform(*onset, shape)
    durations = np.stack(
        [rng.uniform(*rise, shape), rng.uniform(*hold, shape), rng.uniform(*fall, shape)], -1
    )
    keys = start[..., None] + np.concatenate(
        [np.zeros((*shape, 1)), np.cumsum(durations, axis=-1)], axis=-1
    )  # (..., 4)
    squeeze = np.minimum(1.0, (last - start) / (keys[..., 3] - start))  # (...,)
    return start[..., None] + (keys - start[..., None]) * squeeze[..., None]
