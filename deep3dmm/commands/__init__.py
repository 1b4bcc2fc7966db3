"""Subcommands of the ``deep3dmm`` CLI, one module per area; each exposes ``register``."""

from __future__ import annotations

import argparse

__all__ = ["group"]


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
