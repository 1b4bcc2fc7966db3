"""Example: plain CNN vs spatial transformer vs deformable CNNs on rotated/scaled digits.

The task of ``deform_demo.py``
(:func:`~deep3dmm.image_graph.datasets.transformed_digits`: digits warped by a random
rotation in U(-60, 60) degrees and scale in U(0.6, 1.3), independent warps for train and
test), five models trained with the same data, schedule and seeds:

- ``plain``: :class:`~deep3dmm.image_graph.backbone.SmallCNN` ``widths=(16, 32, 64)``;
- ``stn``: a :class:`~deep3dmm.image_graph.stn.SpatialTransformer` in front of it;
- ``dcn1`` / ``dcn2``: its last two convs deformable (DCNv1 / modulated DCNv2);
- ``stn+dcn1``: the transformer in front of the DCNv1 network.

Writes ``stn_metrics.json`` and ``stn.png`` (test inputs and their rectified versions, by
the first seed's ``stn`` model)::

    python examples/image_graph/stn_demo.py --out runs/stn [--models plain stn --seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from deep3dmm.atomic import atomic_path, atomic_write_text
from deep3dmm.cli import run_command
from deep3dmm.commands import add_progress_option
from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import load_digits, transformed_digits
from deep3dmm.image_graph.deformable import deformable_small_cnn
from deep3dmm.image_graph.stn import SpatialTransformer, with_transformer
from deep3dmm.image_graph.train import evaluate_accuracy, fit_classifier

log = logging.getLogger(__name__)

STN_MODELS = ("plain", "stn", "dcn1", "dcn2", "stn+dcn1")
WIDTHS = (16, 32, 64)


def build_stn_model(
    name: str, *, image_size: int = 32, transform: str = "affine", init=None
) -> torch.nn.Module:
    """One of :data:`STN_MODELS` for 1-channel ``image_size`` digits."""
    if name not in STN_MODELS:
        raise ConfigError(f"unknown model {name!r}", fix=f"choose from {', '.join(STN_MODELS)}")
    if name.endswith("dcn1") or name == "dcn2":
        net = deformable_small_cnn(modulated=name == "dcn2", widths=WIDTHS, image_size=image_size)
    else:
        net = SmallCNN(1, 10, WIDTHS, image_size=image_size)
    if name.startswith("stn"):
        stn = SpatialTransformer(1, image_size=image_size, transform=transform, init=init)
        net = with_transformer(net, stn)
    return net


def run_stn_demo(
    out: str | os.PathLike,
    *,
    models: tuple[str, ...] = STN_MODELS,
    seeds: tuple[int, ...] = (0, 1, 2),
    epochs: int = 8,
    image_size: int = 32,
    transform: str = "affine",
    init=None,
    progress: bool = True,
) -> dict:
    """Train every model of ``models`` per seed; test accuracies, JSON and figure in ``out``."""
    for name in models:  # fail before any training
        build_stn_model(name, image_size=image_size, transform=transform, init=init)
    out = Path(out)
    train, test = load_digits(image_size, seed=0)
    train, test = transformed_digits(train, seed=1), transformed_digits(test, seed=2)
    acc: dict[str, list[float]] = {name: [] for name in models}
    seconds: dict[str, float] = {name: 0.0 for name in models}
    first_stn = None
    for seed in seeds:
        for name in models:
            torch.manual_seed(seed)
            model = build_stn_model(name, image_size=image_size, transform=transform, init=init)
            tic = time.perf_counter()
            fit_classifier(
                model, train, test, epochs=epochs, batch_size=64, seed=seed, progress=progress
            )
            seconds[name] += time.perf_counter() - tic
            acc[name].append(evaluate_accuracy(model, test))
            log.info("%s seed %d: test accuracy %.4f", name, seed, acc[name][-1])
            if name == "stn" and first_stn is None:
                first_stn = model
    metrics = {
        "seeds": list(seeds),
        "epochs": epochs,
        "transform": transform,
        "test_accuracy": acc,
        "mean": {k: sum(v) / len(v) for k, v in acc.items()},
        "seconds_per_run": {k: v / len(seeds) for k, v in seconds.items()},
        "load_average": os.getloadavg()[0],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "stn_metrics.json", json.dumps(metrics, indent=2) + "\n")
    if first_stn is not None:
        first_stn.eval()
        with torch.no_grad():
            rectified = first_stn[0](test.images[:10])
        plot_rectified(test.images[:10], rectified, out / "stn.png")
    return metrics


def plot_rectified(inputs: torch.Tensor, rectified: torch.Tensor, path) -> None:
    """Two rows of digits: the warped test inputs and what the transformer makes of them."""
    from matplotlib.figure import Figure

    n = len(inputs)
    fig = Figure(figsize=(0.8 * n, 1.75))
    axes = fig.subplots(2, n, squeeze=False)
    for row, imgs in enumerate((inputs, rectified)):
        for i in range(n):
            ax = axes[row, i]
            ax.imshow(imgs[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(("input", "STN")[row], fontsize=8)
    fig.subplots_adjust(left=0.04, right=1, top=1, bottom=0, wspace=0.05, hspace=0.05)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")


def run(args: argparse.Namespace) -> int:
    """Run :func:`run_stn_demo` and print accuracies."""
    init = None if args.init_theta is None else [args.init_theta[:3], args.init_theta[3:]]
    m = run_stn_demo(
        args.out,
        models=tuple(args.models),
        seeds=tuple(args.seeds),
        epochs=args.epochs,
        image_size=args.size,
        transform=args.transform,
        init=init,
        progress=not args.no_progress,
    )
    for name, accs in m["test_accuracy"].items():
        print(
            f"{name:>9}: " + "  ".join(f"{a:.4f}" for a in accs) + f"  (mean {m['mean'][name]:.4f})"
        )
    print(f"wrote {Path(args.out) / 'stn_metrics.json'} and stn.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for stn_metrics.json, stn.png")
    parser.add_argument("--models", nargs="+", choices=STN_MODELS, default=list(STN_MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=32, help="image side (pixels)")
    parser.add_argument("--transform", choices=("affine", "tps"), default="affine")
    parser.add_argument(
        "--init-theta",
        type=float,
        nargs=6,
        metavar="A",
        help="initial affine matrix, row-major (default identity: 1 0 0 0 1 0)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    add_progress_option(parser)
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
