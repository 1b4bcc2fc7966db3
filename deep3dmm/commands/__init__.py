"""Subcommands of the ``deep3dmm`` CLI, one module per area; each exposes ``register``."""

from __future__ import annotations

import argparse

__all__ = [
    "SPLITS",
    "add_checkpoint_option",
    "add_progress_option",
    "add_split_option",
    "add_view_option",
    "group",
]

SPLITS = ("train", "val", "test")


def group(
    subparsers: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """Get (or create) the command group ``name`` and return its subparsers.

    Several modules may add commands to one group (``data import`` and ``data make``).
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help, description=help)
        parser.set_defaults(group_parser=parser)
        parser._group_subparsers = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    return parser._group_subparsers


def add_split_option(parser: argparse.ArgumentParser) -> None:
    """``--split {train,val,test}`` (default test)."""
    parser.add_argument("--split", default="test", choices=SPLITS)


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint {best,last}`` (default best): which checkpoint of a run to load."""
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))


def add_view_option(parser: argparse.ArgumentParser) -> None:
    """``--view`` (default front): the camera of a rendered picture."""
    parser.add_argument("--view", default="front", help="camera (front, side, top, -y)")


def add_progress_option(
    parser: argparse.ArgumentParser, *, help: str = "hide progress bars"
) -> None:
    """``--no-progress``: hide tqdm bars."""
    parser.add_argument("--no-progress", action="store_true", help=help)
