"""Plain vs deformable CNN on digits with random scale and rotation (Dai et al. 2017, Sec. 4).

Trains :class:`~deep3dmm.image_graph.backbone.SmallCNN` and
:func:`~deep3dmm.image_graph.deformable.deformable_small_cnn` (the same network with its last
stages' 3x3 convolutions deformable; offsets start at zero, so it starts as the plain one) on
the same :func:`~deep3dmm.image_graph.datasets.transformed_digits` data and seeds. Writes
``deform_metrics.json`` and ``deform.png``::

    python examples/image_graph/deform_demo.py --out runs/deform [--seeds 0 1 --epochs 12]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from deep3dmm.atomic import atomic_path, atomic_write_text
from deep3dmm.cli import run_command
from deep3dmm.commands import add_progress_option
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import load_digits, transformed_digits
from deep3dmm.image_graph.deformable import deformable_small_cnn
from deep3dmm.image_graph.train import evaluate_accuracy, fit_classifier

log = logging.getLogger(__name__)


def compare_deformable(
    *,
    seeds: tuple[int, ...] = (0, 1),
    epochs: int = 12,
    image_size: int = 32,
    widths: tuple[int, ...] = (16, 32, 64),
    deformable_stages: int = 2,
    modulated: bool = False,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train plain and deformable CNNs on transformed digits; test accuracy per seed.

    Train and test images get independent random transforms (seeds 1 and 2).

    Returns:
        ``{"plain": [acc per seed], "deformable": [acc per seed]}``.
    """
    train, test = load_digits(image_size, seed=0)
    train = transformed_digits(train, seed=1)
    test = transformed_digits(test, seed=2)
    out: dict[str, list[float]] = {"plain": [], "deformable": []}
    for seed in seeds:
        for name in out:
            torch.manual_seed(seed)
            if name == "plain":
                model = SmallCNN(1, 10, widths, image_size=image_size)
            else:
                model = deformable_small_cnn(
                    deformable_stages=deformable_stages,
                    modulated=modulated,
                    widths=widths,
                    image_size=image_size,
                )
            fit_classifier(
                model, train, test, epochs=epochs, batch_size=64, seed=seed, progress=progress
            )
            out[name].append(evaluate_accuracy(model, test))
            log.info("%s seed %d: test accuracy %.4f", name, seed, out[name][-1])
    return out


def run_deform_demo(
    out: str | os.PathLike,
    *,
    seeds: tuple[int, ...] = (0, 1),
    epochs: int = 12,
    deformable_stages: int = 2,
    modulated: bool = False,
    progress: bool = True,
) -> dict:
    """Plain vs deformable CNN on rotated/scaled digits; writes ``deform_metrics.json``/``.png``."""
    out = Path(out)
    results = compare_deformable(
        seeds=seeds,
        epochs=epochs,
        deformable_stages=deformable_stages,
        modulated=modulated,
        progress=progress,
    )
    metrics = {
        "seeds": list(seeds),
        "epochs": epochs,
        "deformable_stages": deformable_stages,
        "modulated": modulated,
        "test_accuracy": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "deform_metrics.json", json.dumps(metrics, indent=2) + "\n")
    _, test = load_digits(32, seed=0)
    plot_deform(transformed_digits(test, seed=2).images[:12], results, out / "deform.png")
    return metrics


def plot_deform(images: torch.Tensor, results: dict[str, list[float]], path) -> None:
    """A row of transformed test digits and the test accuracy of each model per seed."""
    fig = Figure(figsize=(8, 3.2))
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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def run(args: argparse.Namespace) -> int:
    """Run :func:`run_deform_demo` and print both accuracies."""
    m = run_deform_demo(
        args.out,
        seeds=tuple(args.seeds),
        epochs=args.epochs,
        deformable_stages=args.stages,
        modulated=args.modulated,
        progress=not args.no_progress,
    )
    for name, accs in m["test_accuracy"].items():
        print(
            f"{name:>10}: "
            + "  ".join(f"{a:.4f}" for a in accs)
            + f"  (mean {sum(accs) / len(accs):.4f})"
        )
    print(f"wrote {Path(args.out) / 'deform_metrics.json'} and deform.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for deform_metrics.json and PNG")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--stages", type=int, default=2, help="deformable stages (last ones)")
    parser.add_argument("--modulated", action="store_true", help="DCNv2 modulation masks")
    add_progress_option(parser)
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
