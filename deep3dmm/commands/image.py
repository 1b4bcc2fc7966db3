"""``deep3dmm image train classify|reconstruct`` and ``image summary RUNS``.

The pictures of a run and the image-graph demos are scripts in ``examples/image_graph/``.
The ``train`` flags are generated from :class:`~deep3dmm.image_graph.runs.ImageRunConfig`.
"""

from __future__ import annotations

import argparse

from deep3dmm import schema
from deep3dmm.commands import add_progress_option, group
from deep3dmm.image_graph.runs import TASKS, ImageRunConfig, summarize_runs, train_run

SECTION = "image"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``image`` command group."""
    image = group(subparsers, "image", "image-graph models on 2D data")
    train = image.add_parser(
        "train",
        help="train a keypoint-graph model or the CNN baseline on digits or shapes",
        description="Train into a run folder (config.toml, checkpoints/last.pt, metrics.json).",
    )
    train.add_argument("task", choices=TASKS)
    train.add_argument("--out", required=True, help="run folder to create")
    schema.add_arguments(train, ImageRunConfig, SECTION)
    train.add_argument("--resume", action="store_true", help="continue an unfinished run")
    add_progress_option(train, help="hide the progress bar")
    train.set_defaults(func=run_train)

    summary = image.add_parser("summary", help="mean and spread over seeds of finished runs")
    summary.add_argument("runs", nargs="+", help="run folders")
    summary.set_defaults(func=run_summary)


def run_train(args: argparse.Namespace) -> int:
    """Build the config from the options and train it."""
    options = schema.values_from_args(args, ImageRunConfig, SECTION)
    config = ImageRunConfig(task=args.task, **options)
    metrics = train_run(config, args.out, progress=not args.no_progress, resume=args.resume)
    key = "test_accuracy" if config.task == "classify" else "test_mse"
    print(
        f"{config.label()} seed {config.seed}: {key} {metrics[key]:.4f} "
        f"({metrics['parameters']} parameters, {metrics['train_seconds']:.1f} s) -> {args.out}"
    )
    return 0


def run_summary(args: argparse.Namespace) -> int:
    """Print one line per configuration: mean +- std over seeds."""
    for row in summarize_runs(args.runs):
        print(
            f"{row['label']:<48} {row['metric']} {row['mean']:.4f} +- {row['std']:.4f} "
            f"(n={row['n']}, seeds {row['seeds']}, {row['seconds']:.0f} s/run)"
        )
    return 0
