"""``deep3dmm data make faces|bodies|hands --out DIR``: generate an embedded dataset."""

from __future__ import annotations

import argparse
import time

from deep3dmm.commands import group


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``make`` to the ``data`` command group."""
    data = group(subparsers, "data", "prepare, import and inspect registered-mesh datasets")
    make = data.add_parser(
        "make",
        help="generate a realistic dataset with anny (faces ~ COMA, bodies ~ DFAUST, hands)",
        description="Generate registered meshes with anny: subjects x sequences x frames, "
        "each sequence neutral -> peak -> neutral. Omitted counts take the generator's "
        "defaults (faces 10x12x10, bodies 8x8x12, hands 10x6x10).",
    )
    make.add_argument("kind", choices=["faces", "bodies", "hands"])
    make.add_argument("--out", required=True, help="output prepared-dataset folder")
    make.add_argument("--subjects", type=int, help="number of sampled identities")
    make.add_argument("--sequences", type=int, help="number of expressions / motions / poses")
    make.add_argument("--frames", type=int, help="frames per sequence (>= 2)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument("--batch-size", type=int, help="meshes per anny forward pass")
    make.add_argument(
        "--preview",
        metavar="PNG",
        help="also render peak frames (3 subjects x up to 8 sequences) into this PNG",
    )
    make.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    """Generate the dataset, print a summary, optionally render a preview."""
    from deep3dmm.data.generate import GENERATORS, render_preview

    options = {
        name: getattr(args, name)
        for name in ("subjects", "sequences", "frames", "batch_size")
        if getattr(args, name) is not None
    }
    start = time.perf_counter()
    dataset = GENERATORS[args.kind](args.out, seed=args.seed, **options)
    seconds = time.perf_counter() - start
    meta = dataset.meta
    size = (dataset.path / "vertices.npy").stat().st_size / 2**20
    print(
        f"wrote {dataset.path}: {meta['num_meshes']} meshes x {meta['num_vertices']} vertices "
        f"({len(meta['subjects'])} subjects, {len(meta['sequences'])} sequences), unit "
        f"{meta['unit']}, {size:.1f} MiB, {seconds:.1f} s"
    )
    if args.preview:
        print(f"preview: {render_preview(dataset, args.preview, subjects=3, sequences=8)}")
    return 0
