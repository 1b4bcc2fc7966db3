"""``deep3dmm sample`` and ``deep3dmm sample-quality``: new shapes drawn from a run."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from deep3dmm.commands import (
    add_checkpoint_option,
    add_command,
    add_progress_option,
    add_split_option,
    add_view_option,
)


def _add_draw_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder written by `deep3dmm train`")
    parser.add_argument(
        "--temperature", type=float, default=1.0,
        help="scale of the deviation from the mean code (default 1: the distribution itself)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    add_checkpoint_option(parser)
    add_progress_option(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sample`` and ``sample-quality``."""
    sample = add_command(subparsers, "sample")
    _add_draw_options(sample)
    sample.add_argument("-n", "--count", type=int, default=16, help="meshes drawn (default 16)")
    sample.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sample.add_argument(
        "--traverse", type=int, metavar="DIM",
        help="also render a strip along latent direction DIM (VAE: the unit axis; pca and "
        "plain autoencoders: the DIM-th principal direction of the training codes)",
    )  # fmt: skip
    sample.add_argument("--steps", type=int, default=7, help="meshes of the traversal strip")
    add_view_option(sample)
    sample.set_defaults(func=run_sample)

    quality = add_command(subparsers, "sample-quality")
    _add_draw_options(quality)
    add_split_option(quality)
    quality.add_argument(
        "-n", "--count", type=int, help="samples drawn (default: the size of the split)"
    )
    quality.add_argument("--out", metavar="FILE.json", help="where to write the measures")
    quality.set_defaults(func=run_sample_quality)


def run_sample(args: argparse.Namespace) -> int:
    """Draw, write PLY files, render the grid (and the traversal strip)."""
    import numpy as np

    from deep3dmm.analysis.sampling import (
        decode_codes,
        latent_gaussian,
        sample_codes,
        traversal_codes,
    )
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.mesh.io import write_mesh
    from deep3dmm.train import load_run
    from deep3dmm.viz.figures import parse_views, strip_figure
    from deep3dmm.viz.render import render_meshes

    start = time.perf_counter()
    progress = not args.no_progress
    run = load_run(args.run, checkpoint=args.checkpoint)
    gaussian = latent_gaussian(run, progress=progress)
    codes = sample_codes(gaussian, args.count, temperature=args.temperature, seed=args.seed)
    traverse = None
    if args.traverse is not None:  # check before writing anything
        traverse = traversal_codes(
            gaussian, args.traverse, steps=args.steps, temperature=args.temperature
        )
    meshes = decode_codes(run, codes, progress=progress)  # (n, V, 3) dataset unit
    faces = run.open_dataset(check_split=False).template.faces
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, vertices in enumerate(meshes):
        write_mesh(out / f"sample_{k:03d}.ply", vertices, faces)
    cols = min(len(meshes), 8)
    grid = render_meshes(
        [(v, faces) for v in meshes], out / "samples.png",
        grid=(int(np.ceil(len(meshes) / cols)), cols), panel_size=180,
        camera=parse_views(args.view)[0],
    )  # fmt: skip
    report = {
        "run": str(run.run_dir), "checkpoint": run.checkpoint_name, "source": gaussian.source,
        "count": len(meshes), "seed": args.seed, "temperature": args.temperature,
        "finite": bool(np.isfinite(meshes).all()), "codes": codes.tolist(),
    }  # fmt: skip
    if traverse is not None:
        t, path_codes = traverse
        strip = decode_codes(run, path_codes)
        for k, vertices in enumerate(strip):
            write_mesh(out / f"traverse_{args.traverse}_{k:02d}.ply", vertices, faces)
        figure = strip_figure(
            strip, faces, out / f"traverse_{args.traverse}.png",
            titles=[f"{x:+.1f} sd" for x in t], camera=args.view, panel_size=180,
        )  # fmt: skip
        report["traverse"] = {"dim": args.traverse, "t": t.tolist(), "figure": figure.name}
    atomic_write_text(out / "samples.json", json.dumps(report, indent=2))
    kind = "the prior N(0, I)" if gaussian.source == "prior" else "the training codes' Gaussian"
    print(
        f"drew {len(meshes)} meshes from {kind} (latent {gaussian.dim}, temperature "
        f"{args.temperature:g}, seed {args.seed}) in {time.perf_counter() - start:.1f} s"
    )
    print(f"wrote {out}/sample_000.ply .. sample_{len(meshes) - 1:03d}.ply, {grid}")
    if traverse is not None:
        print(f"wrote {report['traverse']['figure']} and its {args.steps} PLY files in {out}")
    return 0


def run_sample_quality(args: argparse.Namespace) -> int:
    """Measure MMD, coverage and 1-NN accuracy; print and write JSON."""
    from deep3dmm.analysis.sampling import measure_samples
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.train import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    measures = measure_samples(
        run, split=args.split, count=args.count, temperature=args.temperature, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    out = Path(args.out) if args.out else run.run_dir / "eval" / f"sample_quality_{args.split}.json"
    report = {
        "run": str(run.run_dir), "checkpoint": run.checkpoint_name, "split": args.split,
        "seed": args.seed, "temperature": args.temperature, "unit": "mm", **measures.to_dict(),
    }  # fmt: skip
    atomic_write_text(out, json.dumps(report, indent=2))
    print(
        f"{measures.num_samples} samples vs {measures.num_reference} {args.split} meshes: "
        f"MMD {measures.mmd:.3f} mm, coverage {100 * measures.coverage:.1f} %, "
        f"1-NN accuracy {100 * measures.nna:.1f} % (50 % is ideal)"
    )
    print(f"wrote {out}")
    return 0
