"""Compare trained runs: test errors, parameter counts and training time in one table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deep3dmm.analysis.evaluate import load_eval
from deep3dmm.analysis.provenance import stale_reason
from deep3dmm.errors import CheckpointError
from deep3dmm.train.checkpoint import RunFiles, load_checkpoint
from deep3dmm.train.config import load_config

__all__ = ["RunSummary", "summarize_run", "compare_runs", "markdown_table"]


@dataclass(frozen=True)
class RunSummary:
    """One row of a comparison.

    Attributes:
        run: the run folder.
        model: preset name or "conv + pool".
        conv, pool: convolution and pooling kinds.
        latent: latent size.
        num_parameters: trainable parameters.
        epochs: completed epochs.
        train_seconds: wall time of training (all epochs, validation included).
        best_val_mm: lowest validation error.
        test: the stored test evaluation (``RUN/eval/test.json``) or ``None``.
        stale: why ``test`` does not describe the run's current best checkpoint, dataset
            and split (:func:`~deep3dmm.analysis.provenance.stale_reason`), or ``None``.
    """

    run: Path
    model: str
    conv: str
    pool: str
    latent: int
    num_parameters: int
    epochs: int
    train_seconds: float
    best_val_mm: float
    test: dict | None
    stale: str | None = None


def summarize_run(run_dir: str | os.PathLike, *, split: str = "test") -> RunSummary:
    """Read a run's config, last checkpoint and stored evaluation (no model is rebuilt).

    Raises:
        CheckpointError: not a run folder or no checkpoint yet.
    """
    files = RunFiles(Path(run_dir))
    if not files.config.is_file():
        raise CheckpointError("not a run folder (no config.toml)", path=files.root)
    config = load_config(files.config)
    state = load_checkpoint(files.last)
    test = load_eval(files.root, split)
    model = config.model
    return RunSummary(
        run=files.root,
        model=(model.preset or f"{model.conv} + {model.pool}")
        + (" VAE" if model.variational else ""),
        conv=model.conv if model.kind == "autoencoder" else "-",  # pca: no convolution
        pool=model.pool if model.kind == "autoencoder" else "-",
        latent=int(model.latent or 0),
        num_parameters=int(state["num_parameters"]),
        epochs=int(state["epoch"]),
        train_seconds=float(state["train_seconds"]),
        best_val_mm=float(state["best"]["val_mm"]),
        test=test,
        stale=stale_reason(files.root, test, checkpoint="best"),
    )


def compare_runs(run_dirs: Sequence[str | os.PathLike], *, split: str = "test") -> list[RunSummary]:
    """Summaries of several runs, in the order given."""
    return [summarize_run(run, split=split) for run in run_dirs]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def markdown_table(summaries: Sequence[RunSummary], *, split: str = "test") -> str:
    """A Markdown table of the runs (errors in mm; '-' where a run was not evaluated).

    A stale evaluation (another checkpoint, split or dataset content than the run's current
    ones) prints ``stale`` in place of its numbers, with the reason below the table.
    """
    header = (
        f"| run | model | conv | pool | latent | parameters | epochs | training time "
        f"| val mm (best) | {split} mean mm | {split} median mm | {split} std mm |"
    )
    lines = [header, "|" + "|".join(["---"] * 4 + ["---:"] * 8) + "|"]
    for s in summaries:
        test = s.test or {}

        def cell(key: str, test=test, stale=s.stale) -> str:
            if stale is not None and key in test:
                return "stale"
            return f"{test[key]:.3f}" if key in test else "-"

        lines.append(
            f"| {s.run.name} | {s.model} | {s.conv} | {s.pool} | {s.latent} | "
            f"{s.num_parameters:,} | {s.epochs} | {_duration(s.train_seconds)} | "
            f"{s.best_val_mm:.3f} | {cell('mean_mm')} | {cell('median_mm')} | {cell('std_mm')} |"
        )
    notes = [f"- {s.run.name}: {split} evaluation stale: {s.stale}" for s in summaries if s.stale]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
