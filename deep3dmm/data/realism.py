r"""How much a dataset of expression/pose sequences behaves like captured data.

Three properties of a sequence :math:`X_0, \dots, X_{T-1}` (``(V, 3)`` meshes, the first
frame neutral), measured on registered COMA frames as 4.8 mm, 16-17 % and 85 %:

- **peak displacement**: :math:`\max_t \frac1V \sum_v \lVert X_t[v] - X_0[v] \rVert`,
  at the peak frame :math:`p = \arg\max_t` of that mean.
- **first-component residual share**: PCA of the sequence's frames (centred over time,
  flattened to ``3V``); the mean per-vertex norm of what the mean plus the first principal
  component leaves, over the mean per-vertex displacement from :math:`X_0`, both averaged
  over all T frames. 0 when the sequence is one direction scaled over time.
- **naive transfer share**: subjects A and C performing the same sequence, peaks
  :math:`p_A, p_C`; the naive transfer :math:`C_0 + (A_{p_A} - A_0)` against the true
  :math:`C_{p_C}`: :math:`\frac1V\sum_v \lVert C_{p_C} - C_0 - (A_{p_A} - A_0) \rVert`
  over :math:`\frac1V\sum_v \lVert C_{p_C} - C_0 \rVert`. 0 when every subject moves
  exactly alike; averaged over ordered subject pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.errors import DatasetError

__all__ = [
    "RealismReport",
    "SequenceRealism",
    "first_component_residual",
    "measure_realism",
    "naive_transfer",
    "peak_displacement",
]


def peak_displacement(frames: np.ndarray) -> tuple[float, int]:
    """Peak mean per-vertex displacement from the first frame, and the peak frame.

    Args:
        frames: ``(T, V, 3)`` one sequence.

    Returns:
        (peak mean displacement in the input unit, peak frame index).
    """
    frames = np.asarray(frames, dtype=np.float64)
    mean = np.linalg.norm(frames - frames[:1], axis=-1).mean(axis=-1)  # (T,)
    peak = int(np.argmax(mean))
    return float(mean[peak]), peak


def first_component_residual(frames: np.ndarray) -> tuple[float, float]:
    """What the sequence's first principal component leaves.

    Args:
        frames: ``(T, V, 3)`` one sequence.

    Returns:
        (mean per-vertex residual norm, mean per-vertex displacement from frame 0), both
        averaged over the T frames, in the input unit.
    """
    frames = np.asarray(frames, dtype=np.float64)
    t, v, _ = frames.shape
    flat = frames.reshape(t, 3 * v)
    centred = flat - flat.mean(axis=0)  # (T, 3V)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    residual = centred - np.outer(centred @ vt[0], vt[0])  # (T, 3V)
    residual_mean = np.linalg.norm(residual.reshape(t, v, 3), axis=-1).mean()
    displacement = np.linalg.norm(frames - frames[:1], axis=-1).mean()
    return float(residual_mean), float(displacement)


def naive_transfer(
    a_neutral: np.ndarray, a_peak: np.ndarray, c_neutral: np.ndarray, c_peak: np.ndarray
) -> tuple[float, float]:
    """Error of the naive transfer ``C_0 + (A_p - A_0)`` against the true ``C_p``.

    Args:
        a_neutral: ``(V, 3)`` the source subject, neutral.
        a_peak: ``(V, 3)`` the source subject at its peak.
        c_neutral: ``(V, 3)`` the target subject, neutral.
        c_peak: ``(V, 3)`` the target subject at its peak (the truth).

    Returns:
        (mean per-vertex error, mean per-vertex displacement of C at its peak), input unit.
    """
    a_move = np.asarray(a_peak, np.float64) - np.asarray(a_neutral, np.float64)
    c_move = np.asarray(c_peak, np.float64) - np.asarray(c_neutral, np.float64)
    error = np.linalg.norm(c_move - a_move, axis=-1).mean()
    return float(error), float(np.linalg.norm(c_move, axis=-1).mean())


@dataclass(frozen=True)
class SequenceRealism:
    """The properties of one (subject, sequence), in millimetres.

    Attributes:
        peak_mm: peak mean per-vertex displacement from the first frame.
        peak_frame: the frame index of the peak.
        mean_mm: mean per-vertex displacement over all frames.
        residual_mm: mean per-vertex residual after the first principal component.
        transfer_mm: mean naive-transfer error with the other subjects' same sequence as
            the source (NaN with a single subject).
    """

    subject: str
    sequence: str
    peak_mm: float
    peak_frame: int
    mean_mm: float
    residual_mm: float
    transfer_mm: float

    @property
    def residual_share(self) -> float:
        """Residual over mean displacement."""
        return self.residual_mm / self.mean_mm if self.mean_mm > 0 else float("nan")

    @property
    def transfer_share(self) -> float:
        """Naive-transfer error over the peak displacement."""
        return self.transfer_mm / self.peak_mm if self.peak_mm > 0 else float("nan")


@dataclass(frozen=True)
class RealismReport:
    """Per-sequence properties of a dataset and their summaries (means over sequences)."""

    rows: list[SequenceRealism]

    def by_sequence(self) -> dict[str, dict[str, float]]:
        """``{sequence: {peak_mm, residual_share, transfer_share}}``, means over subjects."""
        out: dict[str, dict[str, float]] = {}
        for name in sorted({r.sequence for r in self.rows}):
            out[name] = _summary([r for r in self.rows if r.sequence == name])
        return out

    def summary(self) -> dict[str, float]:
        """Means over every (subject, sequence): peak_mm, residual_share, transfer_share."""
        return _summary(self.rows)


def _summary(rows: list[SequenceRealism]) -> dict[str, float]:
    transfer = [r.transfer_share for r in rows if np.isfinite(r.transfer_share)]
    return {
        "peak_mm": float(np.mean([r.peak_mm for r in rows])),
        "residual_share": float(np.nanmean([r.residual_share for r in rows])),
        "transfer_share": float(np.mean(transfer)) if transfer else float("nan"),
    }


def measure_realism(dataset: PreparedDataset, *, max_sources: int | None = None) -> RealismReport:
    """Measure the three properties on every (subject, sequence) of a prepared dataset.

    Rows of one sequence are ordered by frame; the first frame is the neutral one.

    Args:
        dataset: a prepared dataset (any unit; results in millimetres).
        max_sources: naive transfer uses at most this many other subjects as sources per
            target (the first ones, sorted); None: all of them.

    Returns:
        A :class:`RealismReport`, one row per (subject, sequence), sorted.
    """
    to_mm = dataset.to_millimetres
    subjects = np.asarray(dataset.subjects)
    sequences = np.asarray(dataset.sequences)
    frames_of = np.asarray(dataset.frames)
    clips: dict[tuple[str, str], np.ndarray] = {}
    for key in sorted(set(zip(subjects.tolist(), sequences.tolist()))):
        rows = np.flatnonzero((subjects == key[0]) & (sequences == key[1]))
        rows = rows[np.argsort(frames_of[rows], kind="stable")]
        if len(rows) < 2:
            raise DatasetError(
                f"sequence {key[1]!r} of subject {key[0]!r} has {len(rows)} frame",
                path=dataset.path,
                fix="measure datasets whose sequences have >= 2 frames (the first neutral)",
            )
        clips[key] = np.asarray(dataset.vertices[rows], dtype=np.float64) * to_mm
    peaks = {key: peak_displacement(clip) for key, clip in clips.items()}
    report = []
    for (subject, sequence), clip in clips.items():
        peak_mm, peak = peaks[(subject, sequence)]
        residual, mean = first_component_residual(clip)
        sources = [s for (s, q) in clips if q == sequence and s != subject]
        errors = []
        for source in sources[:max_sources]:
            other = clips[(source, sequence)]
            error, _ = naive_transfer(
                other[0], other[peaks[(source, sequence)][1]], clip[0], clip[peak]
            )
            errors.append(error)
        transfer = float(np.mean(errors)) if errors else float("nan")
        report.append(SequenceRealism(subject, sequence, peak_mm, peak, mean, residual, transfer))
    return RealismReport(report)
