r"""Reconstruction error of a trained run, in millimetres.

The metric of COMA (Ranjan et al., ECCV 2018) and Neural3DMM (Bouritsas et al.,
ICCV 2019): each mesh is normalised with the run's train statistics, encoded and
decoded, de-normalised, and compared vertex by vertex with the original:

.. math::
    e_{nv} = s \, \lVert \hat{x}_{nv} - x_{nv} \rVert_2

with :math:`s` the dataset unit in millimetres (1000 for metres). Reported: mean,
median and standard deviation of all :math:`e_{nv}`, the mean per sequence and per
subject, and the per-vertex mean error :math:`\bar{e}_v` (for heat maps).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deep3dmm.analysis.inputs import split_rows
from deep3dmm.analysis.provenance import eval_provenance
from deep3dmm.atomic import atomic_path, atomic_write_text
from deep3dmm.errors import ConfigError
from deep3dmm.metrics import vertex_errors
from deep3dmm.train.checkpoint import LoadedRun, RunFiles, load_run
from deep3dmm.train.distributed import resolve_device

__all__ = ["EvalResult", "evaluate_run", "reconstruction_errors", "format_table", "load_eval"]

PARTS = ("train", "val", "test")


@dataclass
class EvalResult:
    """Errors of one split of a run, in millimetres.

    Attributes:
        split: "train", "val" or "test".
        num_meshes: meshes evaluated.
        mean_mm, median_mm, std_mm: statistics over all per-vertex errors.
        max_mm: the largest per-vertex error.
        per_sequence: sequence -> {"meshes", "mean_mm", "median_mm"}.
        per_subject: subject -> {"meshes", "mean_mm", "median_mm"}.
        per_vertex_mm: ``(V,)`` mean error of each vertex over the meshes.
        checkpoint: which checkpoint ("best"/"last"), its epoch and file hash.
        dataset: the dataset folder.
        provenance: checkpoint, dataset content hash and split the numbers come from
            (see :mod:`deep3dmm.analysis.provenance`).
    """

    split: str
    num_meshes: int
    mean_mm: float
    median_mm: float
    std_mm: float
    max_mm: float
    per_sequence: dict[str, dict]
    per_subject: dict[str, dict]
    per_vertex_mm: np.ndarray
    checkpoint: dict
    dataset: str
    provenance: dict | None = None

    def to_json(self) -> dict:
        """The summary as JSON-able dict (the per-vertex array goes to a .npy file)."""
        return {
            "split": self.split,
            "num_meshes": self.num_meshes,
            "mean_mm": self.mean_mm,
            "median_mm": self.median_mm,
            "std_mm": self.std_mm,
            "max_mm": self.max_mm,
            "per_sequence": self.per_sequence,
            "per_subject": self.per_subject,
            "checkpoint": self.checkpoint,
            "dataset": self.dataset,
            "provenance": self.provenance,
        }


@torch.no_grad()
def reconstruction_errors(
    model: torch.nn.Module,
    vertices: np.ndarray,
    rows: np.ndarray,
    normalization,
    *,
    to_mm: float,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Per-vertex Euclidean errors ``(N, V)`` in mm of reconstructing ``vertices[rows]``.

    Args:
        model: autoencoder mapping normalised ``(B, V, 3)`` to normalised ``(B, V, 3)``.
        vertices: ``(N_all, V, 3)`` raw coordinates in the dataset unit (may be a memmap).
        rows: ``(N,)`` rows to evaluate.
        normalization: the run's :class:`~deep3dmm.data.Normalization`.
        to_mm: dataset unit in millimetres.
        batch_size: meshes per forward pass.
        device: where the model runs.
        progress: show a tqdm bar.
    """
    model.eval()
    errors = np.empty((len(rows), vertices.shape[1]), dtype=np.float32)
    starts = range(0, len(rows), batch_size)
    for start in tqdm(
        starts, desc="evaluate", unit="batch", disable=None if progress else True, leave=False
    ):
        raw = torch.from_numpy(
            np.asarray(vertices[rows[start : start + batch_size]], dtype=np.float32)
        ).to(device)  # (b, V, 3)
        prediction = normalization.denormalize(model(normalization.normalize(raw)))
        errors[start : start + len(raw)] = vertex_errors(prediction, raw, scale=to_mm).cpu().numpy()
    return errors


def _breakdown(labels: np.ndarray, errors: np.ndarray) -> dict[str, dict]:
    """Mean / median error per label (sequence or subject), sorted by label."""
    out = {}
    names, inverse = np.unique(labels, return_inverse=True)
    for k, name in enumerate(names):
        group = errors[inverse == k]  # (n_k, V)
        out[str(name)] = {
            "meshes": int(len(group)),
            "mean_mm": float(group.mean()),
            "median_mm": float(np.median(group)),
        }
    return out


def evaluate_run(
    run: str | os.PathLike | LoadedRun,
    *,
    split: str = "test",
    data: str | os.PathLike | None = None,
    checkpoint: str = "best",
    device: str = "auto",
    batch_size: int = 64,
    progress: bool = True,
    write: bool = True,
) -> EvalResult:
    """Evaluate a run on one split; writes ``RUN/eval/<split>.json`` and the per-vertex array.

    Args:
        run: a run folder or an already loaded run.
        split: "train", "val" or "test".
        data: the prepared dataset (default: the one the run was trained on).
        checkpoint: "best" or "last".
        device: "auto", "cpu" or "cuda".
        batch_size: meshes per forward pass.
        progress: show a progress bar.
        write: write ``RUN/eval/<split>.json`` and ``RUN/eval/<split>_per_vertex.npy``.

    Raises:
        CheckpointError: the data does not match the checkpoint (vertex count, template hash).
        DatasetError: the run's split was made for other data (the dataset's content hash
            differs: re-imported, regenerated or another dataset).
        ConfigError: unknown split or an empty split.
    """
    if split not in PARTS:
        raise ConfigError(f"unknown split {split!r}", fix=f"use one of {', '.join(PARTS)}")
    torch_device = resolve_device(device)
    if not isinstance(run, LoadedRun):
        run = load_run(run, checkpoint=checkpoint, device=torch_device)
    else:
        run.model.to(torch_device)
    dataset = run.open_dataset(data)  # checks the split's content hash too
    rows = split_rows(run, split, fix="evaluate another split")
    epoch = int(run.checkpoint.get("epoch", 0))
    errors = reconstruction_errors(
        run.model,
        dataset.vertices,
        rows,
        run.normalization,
        to_mm=dataset.to_millimetres,
        batch_size=batch_size,
        device=torch_device,
        progress=progress,
    )  # (N, V)
    result = EvalResult(
        split=split,
        num_meshes=int(len(rows)),
        mean_mm=float(errors.mean()),
        median_mm=float(np.median(errors)),
        std_mm=float(errors.std()),
        max_mm=float(errors.max()),
        per_sequence=_breakdown(dataset.sequences[rows], errors),
        per_subject=_breakdown(dataset.subjects[rows], errors),
        per_vertex_mm=errors.mean(axis=0),
        checkpoint={"name": run.checkpoint_name, "epoch": epoch, "sha256": run.checkpoint_sha256},
        dataset=str(dataset.path),
        provenance=eval_provenance(
            run.run_dir,
            checkpoint=run.checkpoint_name,
            epoch=epoch,
            checkpoint_sha256=run.checkpoint_sha256,
            dataset=dataset,
            split=split,
        ),
    )
    if write:
        files = RunFiles(run.run_dir)
        atomic_write_text(files.eval / f"{split}.json", json.dumps(result.to_json(), indent=2))
        with atomic_path(files.eval / f"{split}_per_vertex.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, result.per_vertex_mm)
    return result


def load_eval(run_dir: str | os.PathLike, split: str = "test") -> dict | None:
    """The stored evaluation summary of a run (``None`` when not evaluated yet)."""
    path = RunFiles(Path(run_dir)).eval / f"{split}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def format_table(result: EvalResult, *, max_rows: int = 30) -> str:
    """A plain-text table: overall statistics, then the per-sequence breakdown."""
    lines = [
        f"{result.split} split: {result.num_meshes} meshes "
        f"(checkpoint {result.checkpoint['name']}, epoch {result.checkpoint['epoch']})",
        f"  mean   {result.mean_mm:9.4f} mm",
        f"  median {result.median_mm:9.4f} mm",
        f"  std    {result.std_mm:9.4f} mm",
        f"  max    {result.max_mm:9.4f} mm",
    ]
    if result.per_sequence:
        width = max(8, *(len(name) for name in result.per_sequence))
        lines.append("")
        lines.append(f"  {'sequence':<{width}}  {'meshes':>6}  {'mean mm':>9}  {'median mm':>9}")
        items = list(result.per_sequence.items())
        for name, row in items[:max_rows]:
            lines.append(
                f"  {name:<{width}}  {row['meshes']:>6}  {row['mean_mm']:>9.4f}  "
                f"{row['median_mm']:>9.4f}"
            )
        if len(items) > max_rows:
            lines.append(f"  ... {len(items) - max_rows} more in the JSON file")
    return "\n".join(lines)
