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
import warnings
from collections.abc import Callable, Sequence

from deep3dmm import __version__
from deep3dmm.commands import COMMANDS
from deep3dmm.errors import Deep3DMMError

# Entry-point settings (the library itself changes no process-wide state): torch's notices
# about the sparse CSR products deep3dmm.nn uses on purpose.
QUIET_WARNINGS = (
    "Sparse CSR tensor support is in beta",
    "Sparse invariant checks are implicitly disabled",
)


def _command(argv: Sequence[str]) -> str | None:
    """The top-level command word of ``argv`` (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only the parts that ``argv`` needs.

    Without ``argv`` every command module is registered. With ``argv`` only the modules of
    its command (:data:`deep3dmm.commands.COMMANDS`) are imported, and without a known
    command only the list of commands is built: ``--help`` and ``--version`` import nothing.
    """
    parser = argparse.ArgumentParser(
        prog="deep3dmm", description="Deep 3D morphable models over registered meshes."
    )
    parser.add_argument("--version", action="version", version=f"deep3dmm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is None:
        modules = list(dict.fromkeys(m for mods, _ in COMMANDS.values() for m in mods))
    else:
        command = _command(argv)
        modules = list(COMMANDS[command][0]) if command in COMMANDS else []
    for name in modules:
        importlib.import_module(f"deep3dmm.commands.{name}").register(subparsers)
    if argv is not None and not modules:  # the list of commands for --help and usage errors
        for name, (_, help_line) in COMMANDS.items():
            subparsers.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input or usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        # A command group given without its subcommand prints the group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    return run_command(args.func, args)


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run ``func(args)`` as every entry point does (the CLI, ``examples/``); the exit code.

    The entry point opts in to its process-wide settings here (log lines on stderr, torch's
    CSR notices hidden, ``args.threads`` torch threads when the command has that option); a
    :class:`Deep3DMMError` or a missing optional dependency becomes one line on stderr and
    exit code 2 (``args.debug`` re-raises it).
    """
    debug = getattr(args, "debug", False)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for message in QUIET_WARNINGS:  # torch's notices about the CSR products used on purpose
        warnings.filterwarnings("ignore", message=message)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(func(args) or 0)
    except Deep3DMMError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency imported without require()
        if debug or (exc.name or "").split(".")[0] in ("deep3dmm", ""):
            raise
        from deep3dmm.optional import missing_dependency_error

        print(f"error: {missing_dependency_error(exc.name or str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
