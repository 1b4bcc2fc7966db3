"""Few-shot GNN with a learned adjacency on digits: 5-way 1-shot and 5-shot.

Trains :func:`~deep3dmm.image_graph.fewshot.train_fewshot` on episodes of classes 0-4 (train
split) and tests on classes 5-9 (test split), accuracy with 95% intervals. Writes
``fewshot_metrics.json`` and ``fewshot.png``::

    python examples/image_graph/fewshot_demo.py --out runs/fewshot [--shots 1 5 --way 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from deep3dmm.atomic import atomic_path, atomic_write_text
from deep3dmm.cli import run_command
from deep3dmm.commands import add_progress_option
from deep3dmm.image_graph.datasets import load_digits
from deep3dmm.image_graph.fewshot import EpisodeSampler, evaluate_fewshot, train_fewshot

log = logging.getLogger(__name__)


def run_fewshot_demo(
    out: str | os.PathLike,
    *,
    shots: tuple[int, ...] = (1, 5),
    n_way: int = 5,
    iterations: int = 300,
    batch: int = 16,
    episodes: int = 500,
    image_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Few-shot GNN: train on episodes of classes 0-4 (train split), test on 5-9 (test split).

    Writes ``fewshot_metrics.json`` and ``fewshot.png``.
    """
    out = Path(out)
    train, test = load_digits(image_size, seed=0)
    metrics: dict = {"n_way": n_way, "iterations": iterations, "episodes": episodes, "seed": seed}
    for k in shots:
        sampler = EpisodeSampler(train, [0, 1, 2, 3, 4], n_way=n_way, k_shot=k, seed=seed)
        model = train_fewshot(
            sampler, iterations=iterations, batch=batch, seed=seed, progress=progress
        )
        test_sampler = EpisodeSampler(test, [5, 6, 7, 8, 9], n_way=n_way, k_shot=k, seed=seed + 1)
        acc, ci = evaluate_fewshot(model, test_sampler, episodes=episodes)
        metrics[f"{k}-shot"] = {"accuracy": acc, "ci95": ci}
        log.info("%d-way %d-shot: %.4f +- %.4f (95%%)", n_way, k, acc, ci)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "fewshot_metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_fewshot(metrics, out / "fewshot.png")
    return metrics


def plot_fewshot(results: dict, path: str | os.PathLike) -> None:
    """Bars of few-shot accuracy with 95% intervals, per shot count, and the chance level.

    ``results``: ``{"1-shot": {"accuracy": a, "ci95": c}, ...}`` plus ``"n_way"``.
    """
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.subplots()
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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def run(args: argparse.Namespace) -> int:
    """Run :func:`run_fewshot_demo` and print accuracies."""
    m = run_fewshot_demo(
        args.out,
        shots=tuple(args.shots),
        n_way=args.way,
        iterations=args.iterations,
        episodes=args.episodes,
        seed=args.seed,
        progress=not args.no_progress,
    )
    for k in args.shots:
        r = m[f"{k}-shot"]
        print(f"{args.way}-way {k}-shot: accuracy {r['accuracy']:.4f} +- {r['ci95']:.4f} (95%)")
    print(f"wrote {Path(args.out) / 'fewshot_metrics.json'} and fewshot.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for fewshot_metrics.json and PNG")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--way", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300, help="training iterations")
    parser.add_argument("--episodes", type=int, default=500, help="test episodes")
    parser.add_argument("--seed", type=int, default=0)
    add_progress_option(parser)
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
