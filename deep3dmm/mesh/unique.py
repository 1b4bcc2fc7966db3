"""Sort-based ``np.unique`` for integer keys.

numpy 2.3+ answers ``np.unique`` on integer arrays with a hash table; on the hierarchy's
edge and (centre, neighbour) keys that is far slower than one sort, and it was the largest
part of building the spirals of an 80k-vertex template (timings: docs/benchmarks.md). These
helpers return what ``np.unique`` returns (sorted values, first-occurrence indices) from a
sort.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unique_ints", "unique_rows"]


def _starts(sorted_values: np.ndarray) -> np.ndarray:
    keep = np.empty(len(sorted_values), dtype=bool)
    keep[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    return keep


def unique_ints(values, *, return_index: bool = False):
    """Sorted unique values of an integer array (and, optionally, first-occurrence indices).

    Same result as ``np.unique(values.ravel(), return_index=return_index)``.
    """
    values = np.asarray(values).ravel()
    if not return_index:
        ordered = np.sort(values)
        return ordered[_starts(ordered)]
    order = np.argsort(values, kind="stable")  # stable: the first occurrence leads
    ordered = values[order]
    keep = _starts(ordered)
    return ordered[keep], order[keep]


def unique_rows(pairs) -> np.ndarray:
    """Sorted unique rows of a non-negative ``(E, 2)`` integer array (``np.unique(axis=0)``)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return pairs
    base = int(pairs.max()) + 1
    keys = unique_ints(pairs[:, 0] * base + pairs[:, 1])
    return np.stack([keys // base, keys % base], axis=1)
