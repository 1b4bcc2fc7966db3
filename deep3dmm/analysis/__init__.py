"""Analysis of trained runs: reconstruction errors in mm, run comparisons."""

from deep3dmm._lazy import lazy_exports

_EXPORTS = {
    "RunSummary": "deep3dmm.analysis.compare",
    "compare_runs": "deep3dmm.analysis.compare",
    "markdown_table": "deep3dmm.analysis.compare",
    "summarize_run": "deep3dmm.analysis.compare",
    "EvalResult": "deep3dmm.analysis.evaluate",
    "evaluate_run": "deep3dmm.analysis.evaluate",
    "format_table": "deep3dmm.analysis.evaluate",
    "load_eval": "deep3dmm.analysis.evaluate",
    "reconstruction_errors": "deep3dmm.analysis.evaluate",
}

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

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
