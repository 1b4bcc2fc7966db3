"""``deep3dmm render | interpolate | transfer | receptive | plot``: pictures of trained runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deep3dmm.commands import add_checkpoint_option, add_command, add_split_option, add_view_option

VIEWS_HELP = "comma-separated views: front, side, top, -y (default front)"


def _picture_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    func,
    *,
    run_help: str = "run folder",
    view_help: str | None = None,
) -> argparse.ArgumentParser:
    """A command that draws pictures of one run: ``RUN --out DIR --view --checkpoint``."""
    parser = add_command(subparsers, name)
    parser.add_argument("run", help=run_help)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_view_option(parser, **({"help": view_help} if view_help else {}))
    add_checkpoint_option(parser)
    parser.set_defaults(func=func)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the analysis commands."""
    render = _picture_command(
        subparsers,
        "render",
        run_render,
        run_help="run folder written by `deep3dmm train`",
        view_help=VIEWS_HELP,
    )
    add_split_option(render)
    render.add_argument("--count", type=int, default=8, help="meshes drawn (default 8)")
    render.add_argument("--ids", type=int, nargs="+", metavar="ROW", help="dataset rows to draw")
    render.add_argument("--max-mm", type=float, default=5.0, help="top of the colour scale")

    interp = _picture_command(subparsers, "interpolate", run_interpolate)
    interp.add_argument("--from", dest="source", required=True, metavar="A", help="file or row")
    interp.add_argument("--to", dest="target", required=True, metavar="B", help="file or row")
    interp.add_argument("--steps", type=int, default=8, help="meshes, endpoints included")

    transfer = _picture_command(subparsers, "transfer", run_transfer)
    transfer.add_argument("--source-neutral", required=True, metavar="A", help="file or row")
    transfer.add_argument("--source-deformed", required=True, metavar="B", help="file or row")
    transfer.add_argument("--target", required=True, metavar="C", help="file or row")
    transfer.add_argument("--max-mm", type=float, default=5.0, help="top of the colour scale")

    receptive = _picture_command(subparsers, "receptive", run_receptive)
    receptive.add_argument("--level", type=int, default=0, help="pooling step (default 0)")
    receptive.add_argument("--direction", default="down", choices=("down", "up"))
    receptive.add_argument(
        "--vertices", type=int, nargs="+", metavar="I", help="output vertices (default: 3)"
    )

    plot = add_command(subparsers, "plot")
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    plot.add_argument("--out", required=True, metavar="FILE", help="image (.png, .pdf, .svg)")
    plot.add_argument("--labels", nargs="+", help="legend names (default: folder names)")
    plot.set_defaults(func=run_plot)


def run_render(args: argparse.Namespace) -> int:
    """Heat maps of a run."""
    from deep3dmm.analysis.heatmaps import render_run
    from deep3dmm.train import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    result = render_run(
        run, args.out, split=args.split, count=args.count, ids=args.ids,
        max_mm=args.max_mm, views=args.view,
    )  # fmt: skip
    for row, mean in zip(result.rows, result.mean_mm):
        print(f"  mesh {row:>6}  mean error {mean:7.3f} mm")
    print(f"{args.split} split mean error {result.split_mean_mm:.3f} mm")
    print(f"wrote {result.figure}")
    print(f"wrote {result.mean_error_figure}")
    print(f"wrote {len(result.meshes)} PLY files in {Path(args.out) / 'meshes'}")
    return 0


def _open(args: argparse.Namespace):
    from deep3dmm.train import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    return run, run.open_dataset()


def run_interpolate(args: argparse.Namespace) -> int:
    """Latent interpolation strip, PLYs and GIF."""
    from deep3dmm.analysis.inputs import resolve_input
    from deep3dmm.analysis.latent import interpolate
    from deep3dmm.mesh import write_mesh
    from deep3dmm.viz.figures import strip_figure, strip_to_gif

    run, dataset = _open(args)
    a = resolve_input(args.source, dataset=dataset)
    b = resolve_input(args.target, dataset=dataset)
    path = interpolate(run, a.vertices, b.vertices, steps=args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = dataset.template.faces
    for k, vertices in enumerate(path.vertices):
        write_mesh(out / f"step_{k:02d}.ply", vertices, faces)
    titles = [f"t={t:.2f}" for t in path.t]
    titles[0], titles[-1] = f"A {a.label}", f"B {b.label}"
    strip = strip_figure(path.vertices, faces, out / "strip.png", titles=titles, camera=args.view)
    gif = strip_to_gif(strip, len(path.vertices), out / "interpolation.gif")
    print(f"interpolated {a.label} -> {b.label} in {len(path.t)} steps")
    print(f"wrote {len(path.t)} PLY files in {out}")
    print(f"wrote {strip}")
    print(f"wrote {gif}")
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    """Deformation transfer with its error report."""
    from deep3dmm.analysis.inputs import dataset_row, resolve_input
    from deep3dmm.analysis.latent import find_ground_truth, transfer
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.mesh import write_mesh
    from deep3dmm.viz.figures import transfer_figure

    run, dataset = _open(args)
    a = resolve_input(args.source_neutral, dataset=dataset)
    b = resolve_input(args.source_deformed, dataset=dataset)
    c = resolve_input(args.target, dataset=dataset)
    truth = None
    if b.row is not None and c.row is not None:
        found = find_ground_truth(dataset, b.row, c.row)
        truth = None if found is None else dataset_row(dataset, found)
    result = transfer(
        run, a.vertices, b.vertices, c.vertices,
        ground_truth=None if truth is None else truth.vertices, to_mm=dataset.to_millimetres,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = dataset.template.faces
    write_mesh(out / "transfer.ply", result.result, faces)
    write_mesh(out / "naive.ply", result.naive, faces)
    figure = transfer_figure(
        faces, a.vertices, b.vertices, c.vertices, result.result, result.naive,
        out / "transfer.png", ground_truth=result.ground_truth,
        to_mm=dataset.to_millimetres, max_mm=args.max_mm, camera=args.view,
    )  # fmt: skip
    report = {"A": a.label, "B": b.label, "C": c.label}
    print(f"transferred {a.label} -> {b.label} onto {c.label}")
    if truth is None:
        print("no ground truth in the dataset (C's subject in B's sequence and frame)")
    else:
        report.update(
            ground_truth=truth.label,
            latent_error_mm=result.error_mm,
            naive_error_mm=result.naive_error_mm,
            ground_truth_reconstruction_error_mm=result.reconstruction_error_mm,
        )
        print(f"ground truth {truth.label}:")
        print(f"  latent transfer      {result.error_mm:8.3f} mm mean per-vertex error")
        print(f"  naive C + (B - A)    {result.naive_error_mm:8.3f} mm")
        print(f"  reconstruction of GT {result.reconstruction_error_mm:8.3f} mm (the floor)")
    atomic_write_text(out / "transfer.json", json.dumps(report, indent=2))
    print(f"wrote {out / 'transfer.ply'}, {out / 'naive.ply'}, {out / 'transfer.json'}")
    print(f"wrote {figure}")
    return 0


def _default_outputs(positions, count: int = 3) -> list[int]:
    """Front-facing output vertices spread left to right (largest z among the front third)."""
    import numpy as np

    front = np.flatnonzero(positions[:, 2] >= np.quantile(positions[:, 2], 2 / 3))
    order = front[np.argsort(positions[front, 0])]
    picks = [order[0], front[np.argmax(positions[front, 2])], order[-1]]
    return list(dict.fromkeys(int(p) for p in picks))[:count]


def run_receptive(args: argparse.Namespace) -> int:
    """Receptive-field picture of one pooling step."""
    import numpy as np

    from deep3dmm.analysis.receptive import check_level, receptive_fields
    from deep3dmm.train import load_run
    from deep3dmm.viz.figures import receptive_figure

    run = load_run(args.run, checkpoint=args.checkpoint)
    vertices = args.vertices
    if not vertices:
        check_level(run.hierarchy, args.level, args.direction)
        dst = args.level + 1 if args.direction == "down" else args.level
        vertices = _default_outputs(np.asarray(run.hierarchy.vertices[dst]))
    field = receptive_fields(
        run.model, run.hierarchy, level=args.level, direction=args.direction, vertices=vertices
    )
    out = Path(args.out)
    name = f"receptive_{args.direction}{args.level}.png"
    figure = receptive_figure(field, out / name, camera=args.view)
    for k, vertex in enumerate(field.outputs):
        fixed = int(np.count_nonzero(field.fixed[k]))
        learned = "-" if field.learned is None else int(np.count_nonzero(field.learned[k]))
        print(f"  output vertex {vertex:>6}: {fixed} fixed inputs, {learned} learned inputs")
    if field.learned is None:
        print("this run pools with the fixed matrices at this step (no learned P)")
    print(f"wrote {figure}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """Training curves of several runs."""
    from deep3dmm.viz.curves import plot_curves

    path = plot_curves(args.runs, args.out, labels=args.labels)
    print(f"wrote {path or args.out}")
    return 0
