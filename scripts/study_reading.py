"""The reading of the accuracy study, generated from its numbers (used by scripts/study.py).

Input: one :class:`Result` per finished run. Output: Markdown bullet lines that say, per
dataset and latent size, which method wins and by how much, where the linear model (PCA)
wins, and what the published 300-epoch schedule would add. Nothing here reads files, so
the wording is tested on synthetic rows (tests/test_scripts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Result", "winners", "deep_vs_linear", "published_addition"]

LINEAR = "pca"


@dataclass(frozen=True)
class Result:
    """One finished run, as the reading needs it.

    Attributes:
        dataset, method: keys of the study's DATASETS and METHODS.
        latent: latent size.
        mean_mm: test mean per-vertex error in mm.
        epochs: completed epochs (1 for the closed-form PCA fit).
        converged: early stopping ended the run (``None``: PCA, closed form; ``False``:
            the epoch cap ended it).
        seconds: training wall time.
    """

    dataset: str
    method: str
    latent: int
    mean_mm: float
    epochs: int = 1
    converged: bool | None = None
    seconds: float = 0.0


def _pct(worse: float, better: float) -> float:
    """How much higher ``worse`` is than ``better``, in per cent of ``better``."""
    return (worse - better) / better * 100.0 if better > 0 else float("inf")


def _by(worse: float, better: float) -> str:
    """The margin in words: "12.3 %", "4.2x" from 100 % on, "exact" when ``better`` is ~0."""
    if better < 5e-4:
        return "an exact reconstruction (< 0.001 mm)"
    pct = _pct(worse, better)
    return f"{pct:.1f} %" if pct < 100 else f"{worse / better:.1f}x"


def _cells(results: Sequence[Result]) -> dict[tuple[str, int], list[Result]]:
    cells: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        cells.setdefault((r.dataset, r.latent), []).append(r)
    return cells


def _flag(r: Result) -> str:
    return " (stopped by the epoch cap, not converged)" if r.converged is False else ""


def winners(results: Sequence[Result], labels: dict[str, str], datasets: dict[str, str]):
    """Per dataset and latent size: the ranking, the winner's margin and PCA's place.

    Args:
        results: finished runs.
        labels: method key -> name in the text.
        datasets: dataset key -> name in the text (also the order of the text).

    Returns:
        Markdown bullet lines (a margin "by x %" means the runner-up's error is x % higher;
        "by k x" that it is k times the winner's).
    """
    lines = []
    cells = _cells(results)
    order = list(datasets)
    for dataset, latent in sorted(cells, key=lambda k: (order.index(k[0]), k[1])):
        cell = sorted(cells[(dataset, latent)], key=lambda r: r.mean_mm)
        if len(cell) < 2:
            continue
        first, second = cell[0], cell[1]
        text = (
            f"- {datasets[dataset]}, latent {latent}: **{labels[first.method]}** wins with "
            f"{first.mean_mm:.3f} mm{_flag(first)}, by {_by(second.mean_mm, first.mean_mm)} "
            f"over {labels[second.method]} ({second.mean_mm:.3f} mm)"
        )
        linear = [r for r in cell if r.method == LINEAR]
        deep = [r for r in cell if r.method != LINEAR]
        if linear and deep and first.method != LINEAR:
            p, d = linear[0], deep[0]
            text += f"; PCA {p.mean_mm:.3f} mm is {_by(p.mean_mm, d.mean_mm)} above it"
        elif linear and deep:
            text += f"; the best deep model is {_by(deep[0].mean_mm, first.mean_mm)} above PCA"
        ranking = " < ".join(f"{labels[r.method]} {r.mean_mm:.3f}" for r in cell)
        lines.append(text + f". Order: {ranking}.")
    return lines


def deep_vs_linear(results: Sequence[Result], datasets: dict[str, str]) -> list[str]:
    """Where the best deep model beats PCA and where PCA wins (same dataset and latent)."""
    deep_wins, pca_wins = [], []
    cells = _cells(results)
    order = list(datasets)
    for dataset, latent in sorted(cells, key=lambda k: (order.index(k[0]), k[1])):
        cell = cells[(dataset, latent)]
        linear = [r for r in cell if r.method == LINEAR]
        deep = sorted((r for r in cell if r.method != LINEAR), key=lambda r: r.mean_mm)
        if not (linear and deep):
            continue
        p, d = linear[0].mean_mm, deep[0].mean_mm
        where = f"{datasets[dataset]} latent {latent}"
        if d < p:
            deep_wins.append(f"{where} ({d:.3f} vs {p:.3f} mm, PCA {_by(p, d)} higher)")
        else:
            pca_wins.append(f"{where} ({p:.3f} vs {d:.3f} mm, best deep {_by(d, p)} higher)")
    if not (deep_wins or pca_wins):
        return []
    total = len(deep_wins) + len(pca_wins)
    lines = [f"- Deep models vs the linear 3DMM: the best deep model beats PCA in "
             f"**{len(deep_wins)} of {total}** dataset/latent cells."]  # fmt: skip
    if deep_wins:
        lines.append("- Deep models win at: " + "; ".join(deep_wins) + ".")
    if pca_wins:
        lines.append("- **PCA wins** at: " + "; ".join(pca_wins) + ".")
    return lines


def published_addition(results: Sequence[Result], epochs: int = 300) -> str:
    """What the published schedule (``epochs`` epochs, no early stopping) would add.

    Estimated from each finished deep run's own seconds per epoch on this machine.
    """
    deep = [r for r in results if r.method != LINEAR and r.epochs > 0]
    if not deep:
        return ""
    extra = sum(max(epochs - r.epochs, 0) * r.seconds / r.epochs for r in deep)
    done = sum(r.seconds for r in deep)
    converged = sum(r.converged is True for r in deep)
    mean_epochs = sum(r.epochs for r in deep) / len(deep)
    return (
        f"The published schedule ({epochs} epochs per run, no early stopping) would add "
        f"about {extra / 3600:.1f} h of training on this machine to the {done / 3600:.1f} h these "
        f"{len(deep)} deep runs took (estimated from each run's own seconds per epoch); "
        f"{converged} of {len(deep)} stopped because their validation error stopped improving "
        f"(mean {mean_epochs:.0f} epochs); what longer training would still change (the slow "
        "tail of the learning-rate decay) is not measured here. Runs stopped by the epoch cap "
        "are flagged in the tables."
    )
