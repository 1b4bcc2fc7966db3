"""``deep3dmm hierarchy TEMPLATE --factors 4 4 4 4 --out FILE``: build and save a mesh hierarchy."""

from __future__ import annotations

import argparse
import time

from deep3dmm.errors import ConfigError
from deep3dmm.mesh import MeshHierarchy, Template, default_cache_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hierarchy`` command."""
    parser = subparsers.add_parser(
        "hierarchy",
        help="build a template's mesh hierarchy (decimation, D/U, Laplacians, spirals)",
        description=(
            "Decimate TEMPLATE level by level (OpenMesh quadric edge collapse), compute the "
            "down/up matrices, adjacency, Laplacians and spirals of every level, save them "
            "to one .npz file and print a per-level table."
        ),
    )
    parser.add_argument("template", help="template mesh (.ply, .obj or .off)")
    parser.add_argument(
        "--factors", type=int, nargs="+", default=[4, 4, 4, 4], help="decimation factor per level"
    )
    parser.add_argument(
        "--spiral-length", type=int, nargs="+", default=[9], help="one value, or one per level"
    )
    parser.add_argument(
        "--spiral-dilation", type=int, nargs="+", default=[1], help="one value, or one per level"
    )
    parser.add_argument(
        "--reference-vertices",
        nargs="+",
        default=None,
        help="Neural3DMM-style spiral starts: template vertex indices, or 'random'",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --reference-vertices random")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="output .npz file")
    target.add_argument(
        "--cache",
        action="store_true",
        help="use the content-hashed cache ($DEEP3DMM_CACHE/hierarchies) instead of --out",
    )
    parser.set_defaults(func=run)


def _reference(values: list[str] | None) -> list[int] | str | None:
    if values is None:
        return None
    if values == ["random"]:
        return "random"
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ConfigError(
            f"--reference-vertices takes vertex indices or 'random', got {' '.join(values)}",
            fix="e.g. --reference-vertices 3567 4051 4597",
        ) from None


def run(args: argparse.Namespace) -> int:
    """Build (or load from cache), save and print the per-level table."""
    template = Template.load(args.template)
    params = {
        "factors": args.factors,
        "spiral_length": args.spiral_length[0]
        if len(args.spiral_length) == 1
        else args.spiral_length,
        "spiral_dilation": args.spiral_dilation[0]
        if len(args.spiral_dilation) == 1
        else args.spiral_dilation,
        "seed": args.seed,
        "reference_vertices": _reference(args.reference_vertices),
    }
    start = time.perf_counter()
    if args.cache:
        hierarchy = MeshHierarchy.cached(template, **params)
    else:
        hierarchy = MeshHierarchy.build(template, **params)
        hierarchy.save(args.out)
    elapsed = time.perf_counter() - start
    print(f"{args.template}: {template.num_vertices} vertices, {template.num_faces} faces")
    for line in hierarchy.table():
        print(f"  {line}")
    where = args.out or default_cache_dir() / f"{hierarchy.hash}.npz"
    print(f"hierarchy {hierarchy.hash} written to {where} in {elapsed:.2f} s")
    return 0
