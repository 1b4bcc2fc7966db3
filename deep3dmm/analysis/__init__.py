"""Analysis of trained runs: reconstruction errors in mm, run comparisons."""

from deep3dmm.analysis.compare import RunSummary, compare_runs, markdown_table, summarize_run
from deep3dmm.analysis.evaluate import (
    EvalResult,
    evaluate_run,
    format_table,
    load_eval,
    reconstruction_errors,
)

__all__ = [
    "EvalResult",
    "RunSummary",
    "compare_runs",
    "evaluate_run",
    "format_table",
    "load_eval",
    "markdown_table",
    "reconstruction_errors",
    "summarize_run",
]
