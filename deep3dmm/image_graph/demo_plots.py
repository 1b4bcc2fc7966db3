"""Figures of the image-graph part-2 demos (tracking, few-shot, deformable, active learning).

Every function draws with matplotlib's Agg backend and writes one PNG atomically.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import torch

from deep3dmm.atomic import atomic_path

__all__ = ["plot_active_curves", "plot_deform", "plot_fewshot", "plot_tracking"]


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(*args, **kwargs)


def _save(plt, fig, path: str | os.PathLike, dpi: int = 90) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_tracking(dets, graph, logits: torch.Tensor, path: str | os.PathLike) -> None:
    """Detections (x position vs frame, coloured by identity, grey = false positive) and the
    classified edges: true positives green, false positives red, missed edges dashed orange.
    """  # noqa: D205
    from matplotlib.collections import LineCollection

    plt, fig, ax = _figure(figsize=(9, 4.5))
    f = dets.frame.numpy()
    x = dets.box[:, 0].numpy()
    ident = dets.identity.numpy()
    pred = (logits > 0).numpy()
    truth = (graph.labels > 0.5).numpy()
    src, dst = graph.edge_index.numpy()
    for mask, style in (
        (pred & truth, dict(color="tab:green", lw=1.2, label="true positive edge")),
        (pred & ~truth, dict(color="tab:red", lw=1.5, label="false positive edge")),
        (~pred & truth, dict(color="tab:orange", lw=1.5, ls="--", label="missed edge")),
    ):
        segs = np.stack(
            [np.stack([f[src[mask]], x[src[mask]]], 1), np.stack([f[dst[mask]], x[dst[mask]]], 1)],
            1,
        )
        ax.add_collection(LineCollection(segs, **style))
    real = ident >= 0
    ax.scatter(f[real], x[real], c=ident[real], cmap="tab20", s=14, zorder=3)
    ax.scatter(f[~real], x[~real], c="0.6", marker="x", s=14, zorder=3, label="false detection")
    ax.set_xlabel("frame")
    ax.set_ylabel("box centre x")
    ax.set_title("held-out sequence: edges classified by the time-aware MPN")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.autoscale()
    _save(plt, fig, path)


def plot_fewshot(results: dict, path: str | os.PathLike) -> None:
    """Bars of few-shot accuracy with 95% intervals, per shot count, and the chance level.

    ``results``: ``{"1-shot": {"accuracy": a, "ci95": c}, ...}`` plus ``"n_way"``.
    """
    plt, fig, ax = _figure(figsize=(4.5, 3.5))
    names = [k for k in results if k.endswith("-shot")]
    acc = [results[k]["accuracy"] for k in names]
    ci = [results[k]["ci95"] for k in names]
    ax.bar(names, acc, yerr=ci, capsize=6, color="tab:blue")
    ax.axhline(1 / results["n_way"], color="k", ls=":", label="chance")
    for i, a in enumerate(acc):
        ax.text(i, a + 0.03, f"{a:.3f}", ha="center")
    ax.set_ylim(0, 1)
    ax.set_ylabel("query accuracy (test classes 5-9)")
    ax.set_title(f"{results['n_way']}-way few-shot GNN on digits")
    ax.legend(loc="upper left")
    _save(plt, fig, path)


def plot_deform(images: torch.Tensor, results: dict[str, list[float]], path) -> None:
    """A row of transformed test digits and the test accuracy of each model per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 3.2))
    grid = fig.add_gridspec(3, 6, width_ratios=[1, 1, 1, 1, 0.25, 3.2])
    for i in range(min(12, len(images))):
        ax = fig.add_subplot(grid[i // 4, i % 4])
        ax.imshow(images[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    ax = fig.add_subplot(grid[:, 5])
    names = list(results)
    for i, name in enumerate(names):
        accs = results[name]
        ax.bar(i, np.mean(accs), color=["tab:gray", "tab:blue"][i % 2], alpha=0.7)
        ax.scatter([i] * len(accs), accs, color="k", s=12, zorder=3)
        ax.text(i, np.mean(accs) + 0.01, f"{np.mean(accs):.3f}", ha="center")
    ax.set_xticks(range(len(names)), names)
    lo = min(min(v) for v in results.values())
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylabel("test accuracy")
    ax.set_title("rotated/scaled digits")
    _save(plt, fig, path)


def plot_active_curves(results, path: str | os.PathLike) -> None:
    """Mean test accuracy vs labelled count per method, with the min-max band over seeds."""
    plt, fig, ax = _figure(figsize=(6, 4))
    by_method = defaultdict(list)
    for r in results:
        by_method[r.method].append(r)
    for method in sorted(by_method):
        runs = by_method[method]
        n = min(len(r.accuracy) for r in runs)
        labelled = runs[0].labelled[:n]
        acc = np.array([r.accuracy[:n] for r in runs])
        ax.plot(labelled, acc.mean(0), marker="o", label=f"{method} ({len(runs)} seeds)")
        ax.fill_between(labelled, acc.min(0), acc.max(0), alpha=0.15)
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test accuracy")
    ax.set_title("active learning on digits (mean; band = min-max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(plt, fig, path)
