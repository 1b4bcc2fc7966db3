"""Training curves of one or several runs (from ``RUN/metrics.csv``) with matplotlib."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import CheckpointError

__all__ = ["read_metrics", "plot_curves"]


def read_metrics(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of ``RUN/metrics.csv`` as float arrays (one entry per epoch).

    Raises:
        CheckpointError: the file is missing or malformed.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise CheckpointError(
            "metrics.csv not found", path=path, fix="train the run for at least one epoch"
        )
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        columns = rows[0].keys() if rows else []
        return {c: np.array([float(r[c]) for r in rows]) for c in columns}
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"metrics.csv is malformed ({exc})", path=path) from exc


def plot_curves(
    run_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
) -> Path:
    """Plot losses (train solid, val dashed) and the validation error in mm per epoch.

    Args:
        run_dirs: one or more run folders (one colour each).
        path: output image (``.png``, ``.pdf``, ``.svg``), written atomically.
        labels: legend names (default: the folder names).

    Returns:
        the written path.
    """
    from matplotlib.figure import Figure  # the object API: no pyplot state, no backend choice

    run_dirs = [Path(r) for r in run_dirs]
    labels = list(labels) if labels is not None else [r.name for r in run_dirs]
    figure = Figure(figsize=(10, 3.8), constrained_layout=True)
    ax_loss, ax_mm = figure.subplots(1, 2)
    for index, (run_dir, label) in enumerate(zip(run_dirs, labels)):
        metrics = read_metrics(run_dir)
        if not metrics:
            continue
        colour = f"C{index % 10}"
        epochs = metrics["epoch"]
        ax_loss.plot(epochs, metrics["train_loss"], color=colour, label=f"{label} train")
        ax_loss.plot(epochs, metrics["val_loss"], color=colour, ls="--", label=f"{label} val")
        ax_mm.plot(epochs, metrics["val_mm"], color=colour, label=label)
        best = int(np.argmin(metrics["val_mm"]))
        ax_mm.plot(epochs[best], metrics["val_mm"][best], "o", color=colour, ms=4)
    ax_loss.set(xlabel="epoch", ylabel="L1 loss (normalised)", yscale="log", title="loss")
    ax_mm.set(xlabel="epoch", ylabel="mean vertex error (mm)", yscale="log", title="validation")
    for axis in (ax_loss, ax_mm):
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path
