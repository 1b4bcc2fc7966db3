"""Pictures of an image-graph run: keypoints over test images, score maps, reconstructions.

Drawn with matplotlib's object API (no pyplot state, no display needed) and written
atomically as PNG::

    python examples/image_graph/show_run.py runs/ig/gat0    # -> runs/ig/gat0/keypoints.png
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure

from deep3dmm.atomic import atomic_path
from deep3dmm.cli import run_command
from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.interconnect import rescale_coords
from deep3dmm.image_graph.runs import load_data, load_run


def _samples(labels: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of ``count`` test images, cycling through the classes (first of each)."""
    classes = labels.unique()
    picks: list[int] = []
    rank = 0
    while len(picks) < count and rank < len(labels):
        for c in classes.tolist():
            members = (labels == c).nonzero().flatten()
            if rank < len(members) and len(picks) < count:
                picks.append(int(members[rank]))
        rank += 1
    return torch.tensor(picks)


def render_run(
    run: str | os.PathLike, out: str | os.PathLike | None = None, *, count: int = 10
) -> Path:
    """Render keypoints (and reconstructions) of ``count`` test images of a run into a PNG.

    Rows: the image with its keypoints (colour and size by score, on image pixels), the
    score map the keypoints were chosen from, and for autoencoders the reconstruction.

    Returns:
        The PNG path (default ``RUN/keypoints.png``).
    """
    config, model, _ = load_run(run)
    if config.model == "cnn":
        raise ConfigError(
            "the CNN-only baseline selects no keypoints", fix="show a --model graph run"
        )
    out = Path(out) if out is not None else Path(run) / "keypoints.png"
    _, test = load_data(config)
    idx = _samples(test.labels, count)
    images = test.images[idx]
    with torch.no_grad():
        kp = model.keypoints(images)
        recon = model(images) if config.task == "reconstruct" else None
        predicted = model(images).argmax(1) if config.task == "classify" else None
    coords = rescale_coords(kp.coords, kp.size, tuple(images.shape[-2:])).numpy()
    scores, score_map = kp.scores.numpy(), kp.score_map.numpy()
    images_np = images.numpy()
    rows = 3 if recon is not None else 2
    fig = Figure(figsize=(1.6 * len(idx), 1.7 * rows))
    axes = fig.subplots(rows, len(idx), squeeze=False)
    for j in range(len(idx)):
        ax = axes[0, j]
        ax.imshow(images_np[j, 0], cmap="gray", vmin=0, vmax=1)
        s = scores[j]
        s = (s - s.min()) / (s.max() - s.min() + 1e-12)
        ax.scatter(
            coords[j, :, 1],
            coords[j, :, 0],
            c=s,
            cmap="autumn",
            s=10 + 30 * s,
            edgecolors="k",
            linewidths=0.4,
        )
        title = f"label {int(test.labels[idx[j]])}"
        if predicted is not None:
            title += f" / pred {int(predicted[j])}"
        ax.set_title(title, fontsize=7)
        axes[1, j].imshow(score_map[j, 0], cmap="viridis")
        axes[1, j].set_title("score map", fontsize=7)
        if recon is not None:
            axes[2, j].imshow(recon[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axes[2, j].set_title("reconstruction", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(config.label(), fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return out


def run(args: argparse.Namespace) -> int:
    """Render the run's picture."""
    path = render_run(args.run, args.out, count=args.count)
    print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and draw; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder")
    parser.add_argument("--out", help="PNG to write (default RUN/keypoints.png)")
    parser.add_argument("--count", type=int, default=10, help="test images to show")
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
