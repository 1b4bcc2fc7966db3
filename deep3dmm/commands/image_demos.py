"""``deep3dmm image track-demo|fewshot|deform-demo|active|active-plot`` (image-graph part 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deep3dmm.commands import add_progress_option, group
from deep3dmm.image_graph.active import ACTIVE_METHODS, load_active_results, run_active_learning
from deep3dmm.image_graph.demo_plots import plot_active_curves
from deep3dmm.image_graph.demos import run_deform_demo, run_fewshot_demo, run_track_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the part-2 demos to the ``image`` command group."""
    image = group(subparsers, "image", "image-graph models on 2D data")

    track = image.add_parser(
        "track-demo",
        help="synthetic multi-object tracking with a time-aware message-passing edge classifier",
    )
    track.add_argument("--out", required=True, help="folder for track_metrics.json, track.png")
    track.add_argument("--train-seqs", type=int, default=20)
    track.add_argument("--test-seqs", type=int, default=5)
    track.add_argument("--steps", type=int, default=300, help="training steps")
    _common(track)
    track.set_defaults(func=run_track)

    few = image.add_parser("fewshot", help="few-shot GNN with learned adjacency on digits")
    few.add_argument("--out", required=True, help="folder for fewshot_metrics.json, fewshot.png")
    few.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    few.add_argument("--way", type=int, default=5)
    few.add_argument("--iterations", type=int, default=300, help="training iterations")
    few.add_argument("--episodes", type=int, default=500, help="test episodes")
    _common(few)
    few.set_defaults(func=run_fewshot)

    deform = image.add_parser(
        "deform-demo", help="plain vs deformable CNN on rotated/scaled digits"
    )
    deform.add_argument("--out", required=True, help="folder for deform_metrics.json, deform.png")
    deform.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    deform.add_argument("--epochs", type=int, default=12)
    deform.add_argument("--stages", type=int, default=2, help="deformable stages (last ones)")
    deform.add_argument("--modulated", action="store_true", help="DCNv2 modulation masks")
    add_progress_option(deform)
    deform.set_defaults(func=run_deform)

    active = image.add_parser("active", help="graph-based active learning loop on digits")
    active.add_argument("--method", choices=ACTIVE_METHODS, required=True)
    active.add_argument(
        "--out", required=True, help="folder for active_<method>_seed<s>.json and active.png"
    )
    active.add_argument("--cycles", type=int, default=5)
    active.add_argument("--budget", type=int, default=50, help="labels added per cycle")
    active.add_argument("--initial", type=int, default=50, help="initial random labels")
    active.add_argument("--subset", type=int, default=500, help="unlabelled nodes per graph")
    active.add_argument("--epochs", type=int, default=40, help="learner epochs per cycle")
    active.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_progress_option(active)
    active.set_defaults(func=run_active)

    plot = image.add_parser("active-plot", help="plot every active_*.json of a folder")
    plot.add_argument("dir", help="folder written by `image active`")
    plot.add_argument("--out", help="PNG (default DIR/active.png)")
    plot.set_defaults(func=run_active_plot)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    add_progress_option(parser)


def run_track(args: argparse.Namespace) -> int:
    """Run :func:`run_track_demo` and print precision/recall."""
    m = run_track_demo(
        args.out,
        train_sequences=args.train_seqs,
        test_sequences=args.test_seqs,
        steps=args.steps,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(f"{m['test_edges']} test edges, {m['test_active_edges']} active")
    for name in ("time_aware", "plain"):
        print(f"{name:>10}: precision {m[name]['precision']:.4f}  recall {m[name]['recall']:.4f}")
    print(f"wrote {Path(args.out) / 'track_metrics.json'} and track.png")
    return 0


def run_fewshot(args: argparse.Namespace) -> int:
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


def run_deform(args: argparse.Namespace) -> int:
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


def run_active(args: argparse.Namespace) -> int:
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


def run_active_plot(args: argparse.Namespace) -> int:
    """Plot every result of a folder into one chart."""
    results = load_active_results(args.dir)
    path = args.out or Path(args.dir) / "active.png"
    plot_active_curves(results, path)
    print(f"wrote {path} ({len(results)} runs)")
    return 0
