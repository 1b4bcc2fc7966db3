"""``deep3dmm runs compare RUN... [--markdown FILE]``."""

from __future__ import annotations

import argparse

from deep3dmm.commands import add_split_option, group


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` command group."""
    runs = group(subparsers, "runs", "inspect and compare trained runs")
    compare = runs.add_parser(
        "compare",
        help="Markdown table of test errors, parameter counts and training time",
        description="Compare trained runs (their RUN/eval/test.json; run `deep3dmm evaluate` "
        "first for runs trained with --no-eval).",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    add_split_option(compare)
    compare.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    compare.add_argument(
        "--figure", metavar="FILE.png", help="also render the same meshes reconstructed by each "
        "run with error heat maps (see `deep3dmm render`)",
    )  # fmt: skip
    compare.add_argument("--max-mm", type=float, default=5.0, help="figure colour scale top")
    compare.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """Print (and optionally write) the comparison table."""
    from deep3dmm.analysis.compare import compare_runs, markdown_table
    from deep3dmm.atomic import atomic_write_text

    table = markdown_table(compare_runs(args.runs, split=args.split), split=args.split)
    print(table, end="")
    if args.markdown:
        atomic_write_text(args.markdown, table)
        print(f"wrote {args.markdown}")
    if args.figure:
        from deep3dmm.analysis.heatmaps import compare_figure

        compare_figure(args.runs, args.figure, split=args.split, max_mm=args.max_mm)
        print(f"wrote {args.figure}")
    return 0
