"""Which checkpoint, dataset and split a stored evaluation was computed from, and checks.

Every ``RUN/eval/<split>.json`` carries a ``provenance`` record::

    {"checkpoint": {"name": "best", "epoch": 12, "sha256": "..."},
     "dataset": {"path": "...", "content_hash": "..."},
     "split": {"name": "test", "sha256": "..."}}

``sha256`` are the first 16 hex digits of the file's SHA-256 (``checkpoints/<name>.pt``,
``split.json``); ``content_hash`` is the prepared dataset's own (``meta.json``). A consumer
(``runs compare``, ``scripts/study.py``) calls :func:`stale_reason` (or :func:`check_eval`)
before it prints a number: the evaluation is stale when the checkpoint file was replaced
(training continued), the split was rewritten, or the run's dataset no longer holds the
data the split was made for (re-imported or regenerated).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from deep3dmm.atomic import file_digest
from deep3dmm.errors import Deep3DMMError, StaleEvaluationError

__all__ = [
    "StaleEvaluationError",
    "eval_provenance",
    "stale_reason",
    "check_eval",
]


def eval_provenance(
    run_dir: str | os.PathLike,
    *,
    checkpoint: str,
    epoch: int,
    checkpoint_sha256: str,
    dataset,
    split: str,
) -> dict:
    """The provenance record of one evaluation (see the module docstring)."""
    from deep3dmm.train.checkpoint import RunFiles

    files = RunFiles(Path(run_dir))
    return {
        "checkpoint": {"name": checkpoint, "epoch": int(epoch), "sha256": checkpoint_sha256},
        "dataset": {
            "path": str(dataset.path),
            "content_hash": str(dataset.meta.get("content_hash", "")),
        },
        "split": {"name": split, "sha256": file_digest(files.split)},
    }


def _dataset_hash(path: str | os.PathLike) -> str | None:
    """The ``content_hash`` in a prepared dataset's meta.json (None when unreadable)."""
    try:
        meta = json.loads((Path(path) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta.get("content_hash") if isinstance(meta, dict) else None


def stale_reason(
    run_dir: str | os.PathLike, record: dict | None, *, checkpoint: str | None = "best"
) -> str | None:
    """Why a stored evaluation no longer describes the run (``None``: it does).

    Args:
        run_dir: the run folder.
        record: the loaded ``RUN/eval/<split>.json`` (``None``: never evaluated, not stale).
        checkpoint: the checkpoint the consumer reports ("best" or "last"); ``None``
            accepts the one recorded.
    """
    from deep3dmm.train.checkpoint import RunFiles
    from deep3dmm.train.config import load_config

    if record is None:
        return None
    files = RunFiles(Path(run_dir))
    provenance = record.get("provenance")
    if not isinstance(provenance, dict):
        return "no provenance recorded (written by an older deep3dmm); re-run evaluate"
    try:
        ckpt, data, split = provenance["checkpoint"], provenance["dataset"], provenance["split"]
        name = ckpt["name"]
        if checkpoint is not None and name != checkpoint:
            return f"evaluated checkpoint {name!r}, this table reports {checkpoint!r}"
        path = files.checkpoints / f"{name}.pt"
        if not path.is_file():
            return f"checkpoint {path.name} is gone"
        if file_digest(path) != ckpt["sha256"]:
            return f"{path.name} changed since the evaluation (epoch {ckpt['epoch']})"
        if not files.split.is_file() or file_digest(files.split) != split["sha256"]:
            return "split.json changed since the evaluation"
        trained_on = load_config(files.config).data.path
        if Path(data["path"]).resolve() != Path(trained_on).resolve():
            return f"evaluated on another dataset ({data['path']})"
        current = _dataset_hash(trained_on)
        if current != data["content_hash"]:
            return (
                f"the dataset changed since the evaluation (content {data['content_hash']} "
                f"then, {current} now)"
            )
    except (KeyError, TypeError, Deep3DMMError) as exc:
        return f"provenance unreadable ({type(exc).__name__}: {exc})"
    return None


def check_eval(
    run_dir: str | os.PathLike, record: dict | None, *, checkpoint: str | None = "best"
) -> None:
    """Raise :class:`StaleEvaluationError` when :func:`stale_reason` finds a reason."""
    reason = stale_reason(run_dir, record, checkpoint=checkpoint)
    if reason is not None:
        raise StaleEvaluationError(
            f"the stored evaluation is stale: {reason}",
            path=Path(run_dir) / "eval",
            fix=f"run `deep3dmm evaluate {run_dir}` again",
        )
