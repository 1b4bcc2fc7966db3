"""``deep3dmm image train classify|reconstruct`` and ``image summary RUNS``.

The pictures of a run and the image-graph demos are scripts in ``examples/image_graph/``.
"""

from __future__ import annotations

import argparse
import dataclasses

from deep3dmm.commands import add_progress_option, group
from deep3dmm.image_graph.models import GRAPH_METHODS, KEYPOINT_METHODS
from deep3dmm.image_graph.runs import DATASETS, ImageRunConfig, summarize_runs, train_run

DEFAULTS = ImageRunConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``image`` command group."""
    image = group(subparsers, "image", "image-graph models on 2D data")
    train = image.add_parser(
        "train",
        help="train a keypoint-graph model or the CNN baseline on digits or shapes",
        description="Train into a run folder (config.json, checkpoint.pt, metrics.json).",
    )
    train.add_argument("task", choices=["classify", "reconstruct"])
    train.add_argument("--out", required=True, help="run folder to create")
    train.add_argument(
        "--model", choices=["graph", "cnn"], default="graph", help="keypoint-graph or CNN-only"
    )
    train.add_argument("--dataset", choices=DATASETS, default=DEFAULTS.dataset)
    train.add_argument("--size", type=int, default=DEFAULTS.size, help="image side (pixels)")
    train.add_argument("--keypoints", choices=KEYPOINT_METHODS, default=DEFAULTS.keypoints)
    train.add_argument("--graph", choices=GRAPH_METHODS, default=DEFAULTS.graph)
    train.add_argument("--num-keypoints", type=int, default=DEFAULTS.num_keypoints)
    train.add_argument(
        "--window",
        type=int,
        default=DEFAULTS.window,
        help="NMS window / regression cell on the size/2 score map",
    )
    train.add_argument("--hidden", type=int, default=DEFAULTS.hidden)
    train.add_argument("--layers", type=int, default=DEFAULTS.layers)
    train.add_argument(
        "--adjacency", choices=["inverse_distance", "gaussian", "knn"], default=DEFAULTS.adjacency
    )
    train.add_argument(
        "--aux-weight",
        type=float,
        default=DEFAULTS.aux_weight,
        help="weight of DiffPool's link + entropy loss",
    )
    train.add_argument(
        "--weighted", action="store_true", help="reconstruct with the confidence-weighted MSE"
    )
    train.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    train.add_argument("--lr", type=float, default=DEFAULTS.lr)
    train.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    train.add_argument("--seed", type=int, default=DEFAULTS.seed)
    train.add_argument("--resume", action="store_true", help="continue an unfinished run")
    add_progress_option(train, help="hide the progress bar")
    train.set_defaults(func=run_train)

    summary = image.add_parser("summary", help="mean and spread over seeds of finished runs")
    summary.add_argument("runs", nargs="+", help="run folders")
    summary.set_defaults(func=run_summary)


def run_train(args: argparse.Namespace) -> int:
    """Build the config from the options and train it."""
    names = {f.name for f in dataclasses.fields(ImageRunConfig)}
    options = {k: v for k, v in vars(args).items() if k in names}
    config = ImageRunConfig(**options)
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
