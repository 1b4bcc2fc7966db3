"""Reconstruction-error heat maps of a run, and the side-by-side comparison of runs.

The per-vertex error is the evaluation metric of :mod:`deep3dmm.analysis.evaluate`
(Euclidean distance after de-normalisation, in mm), drawn on a fixed colour scale
so that pictures of different runs and checkpoints compare.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deep3dmm.analysis.inputs import dataset_row, split_rows
from deep3dmm.analysis.latent import reconstruct
from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.mesh import write_mesh
from deep3dmm.metrics import vertex_errors

__all__ = ["RenderResult", "choose_rows", "render_run", "compare_figure"]

logger = logging.getLogger(__name__)


def choose_rows(run, dataset, *, split: str = "test", count: int = 8, ids=None) -> np.ndarray:
    """Dataset rows to draw: ``ids`` (checked) or ``count`` rows evenly spaced over a split.

    Raises:
        DatasetError: an id out of range.
        ConfigError: unknown or empty split, or ``count < 1``.
    """
    from deep3dmm.data.splits import strided_rows

    if ids:
        return np.array([dataset_row(dataset, int(i)).row for i in ids], dtype=np.int64)
    if int(count) < 1:
        raise ConfigError(f"count must be >= 1, got {count}", fix="--count 8")
    rows = split_rows(run, split, fix="choose another --split or pass --ids")
    return strided_rows(rows, min(int(count), len(rows)))


def _errors_mm(a: np.ndarray, b: np.ndarray, to_mm: float) -> np.ndarray:
    """Per-vertex Euclidean distances ``(N, V)`` in mm."""
    return vertex_errors(a, b, scale=to_mm)


@dataclass
class RenderResult:
    """What :func:`render_run` wrote.

    Attributes:
        rows: the dataset rows drawn.
        mean_mm: ``(N,)`` mean error of each drawn mesh.
        split_mean_mm: mean error over the whole split.
        figure: the input | reconstruction | error rows.
        mean_error_figure: the split's mean per-vertex error on the template.
        meshes: PLY files of the inputs and reconstructions.
    """

    rows: np.ndarray
    mean_mm: np.ndarray
    split_mean_mm: float
    figure: Path
    mean_error_figure: Path
    meshes: list[Path] = field(default_factory=list)


def render_run(
    run,
    out_dir: str | os.PathLike,
    *,
    split: str = "test",
    count: int = 8,
    ids: Sequence[int] | None = None,
    max_mm: float = 5.0,
    views: Sequence[str] = ("front",),
    panel_size: int = 256,
    progress: bool = True,
) -> RenderResult:
    """Render input | reconstruction | error rows and the split's mean error map.

    Writes ``out_dir/reconstructions.png``, ``out_dir/mean_error_<split>.png`` and
    ``out_dir/meshes/<row>_{input,reconstruction}.ply`` (dataset unit).

    Args:
        run: a :class:`~deep3dmm.train.LoadedRun`.
        out_dir: output folder.
        split: the split whose meshes are drawn and averaged.
        count: meshes drawn (evenly spaced over the split) when ``ids`` is not given.
        ids: dataset rows to draw instead.
        max_mm: top of the fixed colour scale in mm.
        views: camera names (``front``, ``side``, ...).
        panel_size: pixels per panel.
        progress: progress bar of the split evaluation.
    """
    from deep3dmm.analysis.evaluate import evaluate_run
    from deep3dmm.viz.figures import mean_error_figure, parse_views, reconstruction_figure

    views = parse_views(views)
    if not max_mm > 0:
        raise ConfigError(f"max_mm must be > 0, got {max_mm}", fix="--max-mm 5")
    dataset = run.open_dataset()
    rows = choose_rows(run, dataset, split=split, count=count, ids=ids)
    out = Path(out_dir)
    inputs = np.asarray(dataset.vertices[rows], dtype=np.float32)  # (N, V, 3)
    recon = reconstruct(run, inputs)  # (N, V, 3)
    errors = _errors_mm(recon, inputs, dataset.to_millimetres)  # (N, V)
    labels = [dataset_row(dataset, r).label for r in rows]
    faces = dataset.template.faces
    figure = reconstruction_figure(
        faces,
        inputs,
        recon,
        errors,
        out / "reconstructions.png",
        labels=labels,
        max_mm=max_mm,
        views=views,
        panel_size=panel_size,
    )
    evaluation = evaluate_run(run, split=split, progress=progress, write=False)
    mean_figure = mean_error_figure(
        dataset.template.vertices,
        faces,
        evaluation.per_vertex_mm,
        out / f"mean_error_{split}.png",
        title=f"{split} mean {evaluation.mean_mm:.2f} mm",
        max_mm=max_mm,
        views=views,
    )
    meshes = []
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    for row, a, b in zip(rows, inputs, recon):
        for name, vertices in (("input", a), ("reconstruction", b)):
            meshes.append(out / "meshes" / f"{row}_{name}.ply")
            write_mesh(meshes[-1], vertices, faces)
    return RenderResult(
        rows=rows,
        mean_mm=errors.mean(axis=1),
        split_mean_mm=evaluation.mean_mm,
        figure=figure,
        mean_error_figure=mean_figure,
        meshes=meshes,
    )


def compare_figure(
    run_dirs: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    split: str = "test",
    count: int = 4,
    ids: Sequence[int] | None = None,
    max_mm: float = 5.0,
    camera: str = "front",
    checkpoint: str = "best",
) -> Path:
    """The same meshes reconstructed by several runs, each with its error map and mean error.

    Meshes come from the first run's ``split`` (or ``ids``); every run must have been
    trained on the same template (checked, :class:`~deep3dmm.errors.CheckpointError`).

    Args:
        run_dirs: run folders (one column pair each).
        path: output PNG.
        split: split of the first run to pick meshes from.
        count: meshes (rows).
        ids: dataset rows instead.
        max_mm: top of the fixed colour scale in mm.
        camera: view of every panel.
        checkpoint: "best" or "last".
    """
    from deep3dmm.train.checkpoint import load_run
    from deep3dmm.viz.figures import comparison_figure

    runs = [load_run(r, checkpoint=checkpoint) for r in run_dirs]
    dataset = runs[0].open_dataset()  # the first run's split fits this data
    for run in runs[1:]:
        run.open_dataset(dataset.path, check_split=False)  # same template as the first run
    rows = choose_rows(runs[0], dataset, split=split, count=count, ids=ids)
    if not ids and split != "train":
        for name, run in zip(list(run_dirs)[1:], runs[1:]):
            trained = np.intersect1d(rows, run.split.train) if _same_data(run, dataset) else []
            if len(trained):
                raise DatasetError(
                    f"{len(trained)} of the drawn {split} meshes (rows "
                    f"{', '.join(map(str, trained[:5]))}) are training meshes of {name}",
                    fix="compare runs trained with the same split, or pass --ids",
                )
    inputs = np.asarray(dataset.vertices[rows], dtype=np.float32)  # (N, V, 3)
    recons = [reconstruct(run, inputs) for run in runs]  # R x (N, V, 3)
    errors = [_errors_mm(r, inputs, dataset.to_millimetres) for r in recons]  # R x (N, V)
    names = _unique_names([Path(r) for r in run_dirs])
    for name, e in zip(names, errors):
        logger.info("%s: mean %.3f mm over the %d drawn meshes", name, e.mean(), len(rows))
    return comparison_figure(
        dataset.template.faces,
        inputs,
        recons,
        errors,
        names,
        path,
        labels=[dataset_row(dataset, r).label for r in rows],
        max_mm=max_mm,
        camera=camera,
    )


def _same_data(run, dataset) -> bool:
    """Whether ``run``'s split indexes ``dataset`` (it was made for the same content)."""
    recorded = run.split.params.get("dataset")
    return recorded is None or recorded == dataset.meta.get("content_hash")


def _unique_names(paths: list[Path]) -> list[str]:
    """Folder names, with the parent prepended where two runs share a name."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.parent.name}/{p.name}" for p in paths]
