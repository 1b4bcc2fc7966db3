"""Graph-based active learning on digits: the selection loop per seed, and the curves.

``run`` calls :func:`~deep3dmm.image_graph.active.run_active_learning` per seed, saves
``active_<method>_seed<s>.json`` and refreshes ``active.png`` from every result of the
folder; ``plot`` redraws that chart::

    for m in random uncertainty coreset coregcn; do
      python examples/image_graph/active_demo.py run --method $m --seeds 0 1 --out runs/active
    done
    python examples/image_graph/active_demo.py plot runs/active
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from deep3dmm.atomic import atomic_path
from deep3dmm.cli import run_command
from deep3dmm.commands import add_progress_option
from deep3dmm.image_graph.active import ACTIVE_METHODS, load_active_results, run_active_learning


def plot_active_curves(results, path: str | os.PathLike) -> None:
    """Mean test accuracy vs labelled count per method, with the min-max band over seeds."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def run_loop(args: argparse.Namespace) -> int:
    """Run the active-learning loop per seed, save JSON, refresh the folder's plot."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        r = run_active_learning(
            args.method,
            cycles=args.cycles,
            budget=args.budget,
            initial=args.initial,
            subset=args.subset,
            epochs=args.epochs,
            seed=seed,
            progress=not args.no_progress,
        )
        r.save(out / f"active_{args.method}_seed{seed}.json")
        print(f"{args.method} seed {seed}:")
        for n, acc in zip(r.labelled, r.accuracy):
            print(f"  {n:5d} labelled: test accuracy {acc:.4f}")
    plot_active_curves(load_active_results(out), out / "active.png")
    print(f"wrote {out}/active_{args.method}_seed*.json and {out / 'active.png'}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """Plot every result of a folder into one chart."""
    results = load_active_results(args.dir)
    path = args.out or Path(args.dir) / "active.png"
    plot_active_curves(results, path)
    print(f"wrote {path} ({len(results)} runs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run ``run`` or ``plot``; the exit code (2: bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    loop = commands.add_parser("run", help="the active-learning loop per seed")
    loop.add_argument("--method", choices=ACTIVE_METHODS, required=True)
    loop.add_argument(
        "--out", required=True, help="folder for active_<method>_seed<s>.json and active.png"
    )
    loop.add_argument("--cycles", type=int, default=5)
    loop.add_argument("--budget", type=int, default=50, help="labels added per cycle")
    loop.add_argument("--initial", type=int, default=50, help="initial random labels")
    loop.add_argument("--subset", type=int, default=500, help="unlabelled nodes per graph")
    loop.add_argument("--epochs", type=int, default=40, help="learner epochs per cycle")
    loop.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_progress_option(loop)
    loop.set_defaults(func=run_loop)
    plot = commands.add_parser("plot", help="plot every active_*.json of a folder")
    plot.add_argument("dir", help="folder written by `active_demo.py run`")
    plot.add_argument("--out", help="PNG (default DIR/active.png)")
    plot.set_defaults(func=run_plot)
    args = parser.parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
