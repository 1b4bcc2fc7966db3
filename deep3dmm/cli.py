"""The ``deep3dmm`` command line: argument parsing only; every command calls the library.

Each area registers its subcommands from ``deep3dmm/commands/<area>.py`` (a
``register(subparsers)`` function). Library errors (:class:`Deep3DMMError`)
become one line on stderr and exit code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from deep3dmm import __version__
from deep3dmm.errors import Deep3DMMError

# Modules under deep3dmm.commands, in the order their commands appear in --help.
COMMAND_MODULES = [
    "mesh",
    "hierarchy",
    "data",
    "data_make",
    "train",
    "runs",
    "analysis",
    "export",
    "viewer",
    "image",
    "image_demos",
    "image_vision",
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="deep3dmm", description="Deep 3D morphable models over registered meshes."
    )
    parser.add_argument("--version", action="version", version=f"deep3dmm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"deep3dmm.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input or usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not hasattr(args, "func"):
        # A command group given without its subcommand prints the group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except Deep3DMMError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency imported without require()
        if args.debug or (exc.name or "").split(".")[0] in ("deep3dmm", ""):
            raise
        from deep3dmm.optional import missing_dependency_error

        print(f"error: {missing_dependency_error(exc.name or str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
