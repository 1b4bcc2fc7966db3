"""Subcommands of the ``deep3dmm`` CLI, one module per area; each exposes ``register``."""

from __future__ import annotations

import argparse

__all__ = [
    "COMMANDS",
    "SPLITS",
    "add_command",
    "add_checkpoint_option",
    "add_progress_option",
    "add_split_option",
    "add_view_option",
    "group",
]

SPLITS = ("train", "val", "test")

#: Every top-level command: name -> (modules of ``deep3dmm.commands`` that register it, the
#: line ``deep3dmm --help`` shows). The CLI imports only the modules of the command given,
#: so ``--help``, ``--version`` and argument errors need none of them.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "mesh": (("mesh",), "inspect mesh files"),
    "hierarchy": (
        ("hierarchy",),
        "build a template's mesh hierarchy (decimation, D/U, Laplacians, spirals)",
    ),
    "data": (("data", "data_make"), "import, generate and inspect prepared datasets"),
    "train": (("train",), "train a model (no arguments: the embedded default in a few minutes)"),
    "evaluate": (("train",), "per-vertex error in mm of a trained run"),
    "runs": (("runs",), "inspect and compare trained runs"),
    "render": (
        ("analysis",),
        "input | reconstruction | error heat map rows, and the mean error map",
    ),
    "interpolate": (("analysis",), "decode a linear path between two meshes' latent codes"),
    "transfer": (("analysis",), "deformation transfer by latent arithmetic z(C) + z(B) - z(A)"),
    "receptive": (
        ("analysis",),
        "receptive fields of the mapping matrices (fixed D/U vs learned P)",
    ),
    "plot": (("analysis",), "training curves of several runs on one chart"),
    "sample": (("sample",), "draw new meshes from a run (VAE prior or fitted Gaussian)"),
    "sample-quality": (
        ("sample",),
        "sample quality vs a split: MMD (mm), coverage, 1-NN accuracy",
    ),
    "register": (
        ("register",),
        "register raw scans (any topology, mesh or point cloud) to a template",
    ),
    "fit": (("fit",), "fit a trained model (latent code + similarity) to a new observation"),
    "export": (
        ("export",),
        "export a run as ONNX or TorchScript (frozen, standard ops, dynamic batch)",
    ),
    "view": (
        ("viewer",),
        "interactive latent-space viewer in the browser (sliders, interpolation, errors)",
    ),
    "image": (("image",), "image-graph models on 2D data (demos: examples/image_graph/)"),
}


def add_command(
    subparsers: argparse._SubParsersAction, name: str, **kwargs
) -> argparse.ArgumentParser:
    """Add the top-level command ``name`` with its :data:`COMMANDS` help line."""
    kwargs.setdefault("description", COMMANDS[name][1])
    return subparsers.add_parser(name, help=COMMANDS[name][1], **kwargs)


def group(
    subparsers: argparse._SubParsersAction, name: str, help: str | None = None
) -> argparse._SubParsersAction:
    """Get (or create) the command group ``name`` and return its subparsers.

    Several modules may add commands to one group (``data import`` and ``data make``); the
    group's help line is its :data:`COMMANDS` entry.
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = add_command(subparsers, name)
        parser.set_defaults(group_parser=parser)
        parser._group_subparsers = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    return parser._group_subparsers


def add_split_option(parser: argparse.ArgumentParser) -> None:
    """``--split {train,val,test}`` (default test)."""
    parser.add_argument("--split", default="test", choices=SPLITS)


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint {best,last}`` (default best): which checkpoint of a run to load."""
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))


def add_view_option(
    parser: argparse.ArgumentParser, *, help: str = "camera (front, side, top, -y)"
) -> None:
    """``--view`` (default front): the camera of a rendered picture (one spelling everywhere)."""
    parser.add_argument("--view", default="front", help=help)


def add_progress_option(
    parser: argparse.ArgumentParser, *, help: str = "hide progress bars"
) -> None:
    """``--quiet``: hide tqdm bars (``args.no_progress``; the one spelling of every command)."""
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=help)
