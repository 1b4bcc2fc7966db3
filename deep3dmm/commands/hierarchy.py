"""``deep3dmm hierarchy TEMPLATE --factors 4 4 4 4 --out FILE``: build and save a mesh hierarchy."""

from __future__ import annotations

import argparse
import time

from deep3dmm import schema
from deep3dmm.commands import add_command
from deep3dmm.mesh.config import HierarchyConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hierarchy`` command (its options generated from ``HierarchyConfig``)."""
    parser = add_command(subparsers, "hierarchy")
    parser.add_argument("template", help="template mesh (.ply, .obj or .off)")
    schema.add_arguments(parser, HierarchyConfig, "hierarchy")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="output .npz file")
    target.add_argument(
        "--cache",
        action="store_true",
        help="use the content-hashed cache ($DEEP3DMM_CACHE/hierarchies) instead of --out",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build (or load from cache), save and print the per-level table."""
    from deep3dmm.mesh import MeshHierarchy, Template, default_cache_dir

    config = HierarchyConfig.from_options(
        schema.values_from_args(args, HierarchyConfig, "hierarchy")
    )
    template = Template.load(args.template)
    start = time.perf_counter()
    if args.cache:
        hierarchy = MeshHierarchy.cached(template, config)
    else:
        hierarchy = MeshHierarchy.build(template, config)
        hierarchy.save(args.out)
    elapsed = time.perf_counter() - start
    print(f"{args.template}: {template.num_vertices} vertices, {template.num_faces} faces")
    for line in hierarchy.table():
        print(f"  {line}")
    where = args.out or default_cache_dir() / f"{hierarchy.hash}.npz"
    print(f"hierarchy {hierarchy.hash} written to {where} in {elapsed:.2f} s")
    return 0
