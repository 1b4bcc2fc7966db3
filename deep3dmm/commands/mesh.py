"""``deep3dmm mesh info FILE`` and ``deep3dmm mesh shape NAME --out FILE``."""

from __future__ import annotations

import argparse

from deep3dmm.commands import group
from deep3dmm.mesh import mesh_info, read_mesh, shapes, write_mesh


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mesh`` command group."""
    mesh = group(subparsers, "mesh", "inspect mesh files")
    info = mesh.add_parser("info", help="print counts, bounding box, unit guess and topology")
    info.add_argument("file", help="a .ply, .obj or .off mesh")
    info.set_defaults(func=run_info)
    register_shape(mesh)


def run_info(args: argparse.Namespace) -> int:
    """Print :func:`deep3dmm.mesh.mesh_info` of one file."""
    vertices, faces = read_mesh(args.file)
    print(args.file)
    for line in mesh_info(vertices, faces).lines():
        print(f"  {line}")
    return 0


SHAPES = {"icosphere": shapes.icosphere, "grid": shapes.grid, "torus": shapes.torus}


def register_shape(mesh: argparse._SubParsersAction) -> None:
    """Add ``mesh shape``: write a procedural mesh."""
    shape = mesh.add_parser("shape", help="write a procedural test mesh (icosphere, grid, torus)")
    shape.add_argument("name", choices=sorted(SHAPES))
    shape.add_argument("--out", required=True, help="output .ply/.obj/.off file")
    shape.set_defaults(func=run_shape)


def run_shape(args: argparse.Namespace) -> int:
    """Write the chosen procedural mesh."""
    vertices, faces = SHAPES[args.name]()
    write_mesh(args.out, vertices, faces)
    print(f"wrote {args.out} ({len(vertices)} vertices, {len(faces)} faces)")
    return 0
