"""``deep3dmm image agnn-demo|caption-demo|stn-demo``: video segmentation, captioning, STN."""

from __future__ import annotations

import argparse
from pathlib import Path

from deep3dmm.commands import add_progress_option, group

STN_MODELS = ("plain", "stn", "dcn1", "dcn2", "stn+dcn1")  # deep3dmm.image_graph.stn_demo
ATTENTION_MODES = ("soft", "hard", "none")  # deep3dmm.image_graph.captioning


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the three examples to the ``image`` command group."""
    image = group(subparsers, "image", "image-graph models on 2D data")

    agnn = image.add_parser(
        "agnn-demo", help="attentive GNN (K rounds) vs per-frame CNN on synthetic video clips"
    )
    agnn.add_argument("--out", required=True, help="folder for agnn_metrics.json, agnn.png")
    agnn.add_argument(
        "--iterations", type=int, nargs="+", default=[0, 1, 3], help="message-passing rounds K"
    )
    agnn.add_argument("--train-clips", type=int, default=600)
    agnn.add_argument("--test-clips", type=int, default=200)
    agnn.add_argument("--frames", type=int, default=4)
    agnn.add_argument("--size", type=int, default=32, help="frame side (pixels)")
    agnn.add_argument("--epochs", type=int, default=12)
    _common(agnn)
    agnn.set_defaults(func=run_agnn)

    cap = image.add_parser(
        "caption-demo", help="show-attend-tell captioning: soft vs hard vs no attention"
    )
    cap.add_argument("--out", required=True, help="folder for caption_metrics.json and PNG")
    cap.add_argument("--modes", nargs="+", choices=ATTENTION_MODES, default=list(ATTENTION_MODES))
    cap.add_argument("--train-images", type=int, default=2000)
    cap.add_argument("--test-images", type=int, default=500)
    cap.add_argument("--size", type=int, default=48, help="image side (pixels)")
    cap.add_argument("--epochs", type=int, default=8)
    cap.add_argument("--min-count", type=int, default=1, help="keep words seen at least this often")
    _common(cap)
    cap.set_defaults(func=run_caption)

    stn = image.add_parser(
        "stn-demo", help="plain vs spatial transformer vs deformable CNNs on rotated digits"
    )
    stn.add_argument("--out", required=True, help="folder for stn_metrics.json, stn.png")
    stn.add_argument("--models", nargs="+", choices=STN_MODELS, default=list(STN_MODELS))
    stn.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    stn.add_argument("--epochs", type=int, default=8)
    stn.add_argument("--size", type=int, default=32, help="image side (pixels)")
    stn.add_argument("--transform", choices=("affine", "tps"), default="affine")
    stn.add_argument(
        "--init-theta",
        type=float,
        nargs=6,
        metavar="A",
        help="initial affine matrix, row-major (default identity: 1 0 0 0 1 0)",
    )
    stn.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    add_progress_option(stn)
    stn.set_defaults(func=run_stn)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    add_progress_option(parser)


def _threads(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def run_agnn(args: argparse.Namespace) -> int:
    """Run :func:`deep3dmm.image_graph.agnn_demo.run_agnn_demo` and print the IoU table."""
    from deep3dmm.image_graph.agnn_demo import run_agnn_demo

    _threads(args)
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


def run_caption(args: argparse.Namespace) -> int:
    """Run :func:`deep3dmm.image_graph.caption_demo.run_caption_demo`; print BLEU and exact."""
    from deep3dmm.image_graph.caption_demo import run_caption_demo

    _threads(args)
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


def run_stn(args: argparse.Namespace) -> int:
    """Run :func:`deep3dmm.image_graph.stn_demo.run_stn_demo` and print accuracies."""
    from deep3dmm.image_graph.stn_demo import run_stn_demo

    _threads(args)
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
