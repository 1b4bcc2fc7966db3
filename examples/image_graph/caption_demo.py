"""Example: soft vs hard vs no attention for captioning synthetic shape images.

Trains one :class:`~deep3dmm.image_graph.captioning.ShowAttendTell` per attention mode on
:func:`~deep3dmm.image_graph.caption_data.make_captions` images (training seed ``2 * seed``,
test seed ``2 * seed + 1``), decodes the test images greedily and scores them with corpus
BLEU-1..4 and exact match. Writes ``caption_metrics.json`` and ``caption_attention.png``
(one test image per row, its attention map over every generated word, soft and hard)::

    python examples/image_graph/caption_demo.py --out runs/caption [--modes soft hard none]
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
from deep3dmm.image_graph.caption_data import Vocabulary, make_captions
from deep3dmm.image_graph.captioning import ATTENTION_MODES, ShowAttendTell, bleu_scores
from deep3dmm.image_graph.datasets import ImageSplit
from deep3dmm.image_graph.train import fit

log = logging.getLogger(__name__)


def caption_scores(model: ShowAttendTell, vocab: Vocabulary, images, captions) -> dict:
    """BLEU-1..4 and exact match of greedy captions of ``images`` against ``captions``."""
    tokens = torch.cat([model.generate(images[i : i + 256])[0] for i in range(0, len(images), 256)])
    hyps = [vocab.decode(t) for t in tokens.tolist()]
    exact = sum(h == list(r) for h, r in zip(hyps, captions)) / len(captions)
    return {**bleu_scores(captions, hyps), "exact_match": exact}


def run_caption_demo(
    out: str | os.PathLike,
    *,
    modes: tuple[str, ...] = ATTENTION_MODES,
    train_images: int = 2000,
    test_images: int = 500,
    image_size: int = 48,
    epochs: int = 8,
    min_count: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train one captioner per attention mode; BLEU and exact match, JSON and figure in ``out``."""
    out = Path(out)
    train = make_captions(train_images, image_size, seed=2 * seed)
    test = make_captions(test_images, image_size, seed=2 * seed + 1)
    vocab = Vocabulary.build(train.captions, min_count=min_count)
    for mode in modes:  # fail before any training
        ShowAttendTell(len(vocab), attention=mode, image_size=image_size)
    tokens = vocab.encode(train.captions)
    train_split = ImageSplit(train.images, tokens)
    test_split = ImageSplit(test.images, vocab.encode(test.captions))
    metrics: dict = {
        "train_images": train_images,
        "test_images": test_images,
        "image_size": image_size,
        "epochs": epochs,
        "seed": seed,
        "vocabulary": vocab.itos,
        "models": {},
    }
    examples = {}
    for mode in modes:
        torch.manual_seed(seed)
        model = ShowAttendTell(len(vocab), attention=mode, image_size=image_size)
        tic = time.perf_counter()
        fit(
            model,
            train_split,
            test_split,
            loss_fn=lambda m, x, y: m.training_loss(x, y),
            metric_fn=lambda m, split: caption_scores(
                m, vocab, split.images[:200], test.captions[:200]
            )["exact_match"],
            metric_name="exact",
            epochs=epochs,
            lr=3e-3,
            batch_size=64,
            seed=seed,
            progress=progress,
        )
        seconds = time.perf_counter() - tic
        scores = caption_scores(model, vocab, test.images, test.captions)
        scores["train_seconds"] = seconds
        scores["parameters"] = sum(p.numel() for p in model.parameters())
        metrics["models"][mode] = scores
        log.info("%s: %s", mode, scores)
        if mode != "none":
            toks, alphas = model.generate(test.images[:3])
            examples[mode] = ([vocab.decode(t) for t in toks.tolist()], alphas)
    metrics["load_average"] = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "caption_metrics.json", json.dumps(metrics, indent=2) + "\n")
    if examples:
        plot_attention(test.images[:3], examples, out / "caption_attention.png")
    return metrics


def plot_attention(images: torch.Tensor, examples: dict, path) -> None:
    """Per mode and image: the image, then its attention map overlaid for each generated word."""
    import torch.nn.functional as F
    from matplotlib.figure import Figure

    rows = [(mode, i) for mode in examples for i in range(len(images))]
    steps = {mode: alphas.shape[1] for mode, (_, alphas) in examples.items()}
    shown = {  # generated words and <end>, as many as were decoded
        mode: [[*w, "<end>"][: steps[mode]] for w in words] for mode, (words, _) in examples.items()
    }
    cols = 1 + max(len(w) for ws in shown.values() for w in ws)
    fig = Figure(figsize=(0.9 * cols, 0.95 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    size = images.shape[-1]
    for r, (mode, i) in enumerate(rows):
        _, alphas = examples[mode]
        side = int(round(alphas.shape[-1] ** 0.5))
        img = images[i].permute(1, 2, 0).numpy()
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis("off")
        axes[r, 0].imshow(img)
        axes[r, 0].set_title(mode, fontsize=7)
        for t, word in enumerate(shown[mode][i]):
            a = alphas[i, t].reshape(1, 1, side, side)
            a = F.interpolate(a, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            ax = axes[r, t + 1]
            ax.imshow(img * 0.45)
            ax.imshow(a.numpy(), cmap="magma", alpha=0.65, vmin=0, vmax=float(a.max()))
            ax.set_title(word, fontsize=7)
    fig.subplots_adjust(left=0, right=1, top=0.93, bottom=0, wspace=0.05, hspace=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=70, format="png")


def run(args: argparse.Namespace) -> int:
    """Run :func:`run_caption_demo`; print BLEU and exact match."""
    m = run_caption_demo(
        args.out,
        modes=tuple(args.modes),
        train_images=args.train_images,
        test_images=args.test_images,
        image_size=args.size,
        epochs=args.epochs,
        min_count=args.min_count,
        seed=args.seed,
        progress=not args.no_progress,
    )
    for mode, r in m["models"].items():
        bleu = " ".join(f"{r[f'bleu{n}']:.3f}" for n in range(1, 5))
        print(f"{mode:>5}: BLEU-1..4 {bleu}  exact {r['exact_match']:.3f}")
    print(f"wrote {Path(args.out) / 'caption_metrics.json'} and caption_attention.png")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; the exit code (2: bad input, one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for caption_metrics.json and PNG")
    parser.add_argument(
        "--modes", nargs="+", choices=ATTENTION_MODES, default=list(ATTENTION_MODES)
    )
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--size", type=int, default=48, help="image side (pixels)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--min-count", type=int, default=1, help="keep words seen at least this often"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    add_progress_option(parser)
    return run_command(run, parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
