"""Example: AGNN with K = 0 (per-frame CNN), 1 and 3 message-passing rounds on synthetic clips.

Trains each :class:`~deep3dmm.image_graph.agnn.AGNN` on
:func:`~deep3dmm.image_graph.video_data.make_videos` clips (training seed ``2 * seed``,
test seed ``2 * seed + 1``) with per-pixel binary cross-entropy plus a soft Dice term, and
reports the mean IoU over every test frame. Writes ``agnn_metrics.json`` and ``agnn.png``
(test frames with the ground truth and each model's predicted mask)::

    python examples/image_graph/agnn_demo.py --out runs/agnn [--iterations 0 1 3 --epochs 12]
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
import torch.nn.functional as F

from deep3dmm.atomic import atomic_path, atomic_write_text
from deep3dmm.cli import run_command
from deep3dmm.commands import add_progress_option
from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.agnn import AGNN, mask_iou
from deep3dmm.image_graph.datasets import ImageSplit
from deep3dmm.image_graph.train import fit, predict
from deep3dmm.image_graph.video_data import make_videos

log = logging.getLogger(__name__)


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean BCE over pixels plus ``1 - soft Dice`` per frame; ``(B, T, H, W)`` both."""
    prob = torch.sigmoid(logits)
    inter = (prob * masks).flatten(2).sum(-1)
    dice = (2 * inter + 1) / (prob.flatten(2).sum(-1) + masks.flatten(2).sum(-1) + 1)
    return F.binary_cross_entropy_with_logits(logits, masks) + (1 - dice).mean()


def run_agnn_demo(
    out: str | os.PathLike,
    *,
    iterations: tuple[int, ...] = (0, 1, 3),
    train_clips: int = 600,
    test_clips: int = 200,
    frames: int = 4,
    image_size: int = 32,
    epochs: int = 12,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train one AGNN per ``K`` in ``iterations``; mean test IoU, JSON and figure in ``out``."""
    for k in iterations:  # fail before any training (K < 0, bad size)
        AGNN(image_size=image_size, iterations=k)
    if train_clips < 1 or test_clips < 1:
        raise ConfigError(f"need train_clips, test_clips >= 1, got {train_clips}, {test_clips}")
    out = Path(out)
    train = make_videos(train_clips, frames=frames, size=image_size, seed=2 * seed)
    test = make_videos(test_clips, frames=frames, size=image_size, seed=2 * seed + 1)
    train_split = ImageSplit(train.videos, train.masks)
    test_split = ImageSplit(test.videos, test.masks)

    def iou(model, split):
        return mask_iou(predict(model, split.images, batch_size=64), split.labels).mean().item()

    metrics: dict = {
        "train_clips": train_clips,
        "test_clips": test_clips,
        "frames": frames,
        "image_size": image_size,
        "epochs": epochs,
        "seed": seed,
        "object_fraction": test.masks.mean().item(),
        "models": {},
    }
    predictions = {}
    for k in iterations:
        torch.manual_seed(seed)
        model = AGNN(image_size=image_size, iterations=k)
        tic = time.perf_counter()
        fit(
            model,
            train_split,
            test_split,
            loss_fn=lambda m, x, y: segmentation_loss(m(x), y),
            metric_fn=iou,
            metric_name="iou",
            epochs=epochs,
            lr=3e-3,
            batch_size=16,
            seed=seed,
            progress=progress,
        )
        seconds = time.perf_counter() - tic
        logits = predict(model, test.videos, batch_size=64)
        per_frame = mask_iou(logits, test.masks)
        metrics["models"][f"K={k}"] = {
            "iterations": k,
            "mean_iou": per_frame.mean().item(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": seconds,
        }
        predictions[k] = logits[:3] > 0
        log.info("K=%d: mean IoU %.4f (%.0f s)", k, per_frame.mean().item(), seconds)
    metrics["load_average"] = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "agnn_metrics.json", json.dumps(metrics, indent=2) + "\n")
    plot_agnn_strip(test.videos[:3], test.masks[:3], predictions, out / "agnn.png")
    return metrics


def plot_agnn_strip(videos, masks, predictions: dict, path) -> None:
    """Per clip: a row of frames, the ground-truth row and one row per model (red overlay)."""
    from matplotlib.figure import Figure

    n, t = videos.shape[:2]
    rows = [("frames", None), ("truth", masks > 0.5)]
    rows += [(f"K={k}", pred) for k, pred in predictions.items()]
    fig = Figure(figsize=(1.0 * t * n + 0.6, 1.0 * len(rows)))
    axes = fig.subplots(len(rows), t * n, squeeze=False)
    red = torch.tensor([1.0, 0.1, 0.1])[:, None, None]
    for r, (name, mask) in enumerate(rows):
        for i in range(n):
            for j in range(t):
                img = videos[i, j]
                if mask is not None:
                    m = mask[i, j].float()[None]
                    img = img * (1 - 0.6 * m) + 0.6 * m * red
                ax = axes[r, i * t + j]
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                if i * t + j == 0:
                    ax.set_ylabel(name, fontsize=8)
    fig.subplots_adjust(left=0.04, right=1, top=1, bottom=0, wspace=0.05, hspace=0.05)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=70, format="png")


def run(args: argparse.Namespace) -> int:
    """Run :func:`run_agnn_demo` and print the IoU table."""
    m = run_agnn_demo(
        args.out,
        iterations=tuple(args.iterations),
        train_clips=args.train_clips,
        test_clips=args.test_clips,
        frames=args.frames,
        image_size=args.size,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.no_progress,
    )
    for name, r in m["models"].items():
        print(f"{name:>5}: mean IoU {r['mean_iou']:.4f}  ({r['train_seconds']:.0f} s)")
    print(f"wrote {Path(args.out) / 'agnn_metrics.json'} and agnn.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for agnn_metrics.json, agnn.png")
    parser.add_argument(
        "--iterations", type=int, nargs="+", default=[0, 1, 3], help="message-passing rounds K"
    )
    parser.add_argument("--train-clips", type=int, default=600)
    parser.add_argument("--test-clips", type=int, default=200)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=32, help="frame side (pixels)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    add_progress_option(parser)
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
