"""Fit a run to files: one target (mesh, scan, partial scan, landmarks) or a whole split.

The library side of ``deep3dmm fit``. A target mesh that has the template's topology
is a registered target (per-vertex loss, encoder initialisation); anything else is a
scan. The batch mode fits every mesh of a split in vectorised batches and tabulates
the encoder's reconstruction error against the fitted error, in mm.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import TopologyMismatchError
from deep3dmm.fitting.fitter import FitOptions, fit
from deep3dmm.fitting.model import FitModel

__all__ = ["fit_file", "fit_split"]

logger = logging.getLogger(__name__)


def _registered(dataset, scan) -> np.ndarray | None:
    """The scan's vertices when it has exactly the template's topology, else ``None``."""
    if not scan.has_faces:
        return None
    try:
        dataset.template.check_registered((scan.points, scan.faces))
    except TopologyMismatchError:
        return None
    return scan.points.astype(np.float32)


def fit_file(
    run,
    target: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    landmarks: str | os.PathLike | None = None,
    model_landmarks: str | os.PathLike | None = None,
    partial: bool = False,
    as_scan: bool = False,
    scan_unit: str | None = None,
    options: FitOptions | None = None,
    figure: bool = True,
    progress: bool = True,
) -> dict:
    """Fit a loaded run to one target file (and/or landmarks); write the fit into ``out_dir``.

    Args:
        run: a :class:`~deep3dmm.train.LoadedRun`.
        target: a mesh / point cloud file or a dataset row number, or ``None`` (landmarks only).
        out_dir: output folder (see :mod:`deep3dmm.fitting.outputs`).
        landmarks: target landmark points (x y z rows, the target's unit).
        model_landmarks: template vertex ids or ``face w0 w1 w2`` rows.
        partial: the target covers part of the surface (one-sided distance).
        as_scan: treat a registered mesh as an unregistered scan.
        scan_unit: the target's unit (default: detected by size against the template).
        options: :class:`FitOptions`.
        figure: render the target | fit | error picture.
        progress: progress bar.

    Returns:
        The report written to ``out_dir/fit.json``.
    """
    from deep3dmm.analysis.inputs import dataset_row
    from deep3dmm.registration.landmarks import read_scan_landmarks, read_template_landmarks
    from deep3dmm.registration.report import scan_report
    from deep3dmm.registration.scan import Scan, read_scan, scan_unit_scale

    options = options or FitOptions()
    dataset = run.open_dataset()
    fm = FitModel.from_run(run, dataset)
    report: dict = {"run": str(run.run_dir), "unit": dataset.unit, "notes": []}
    scan, registered, factor = None, None, 1.0
    if target is not None:
        text = str(target)
        if text.isdigit() and not Path(text).is_file():
            row = dataset_row(dataset, int(text))
            scan = Scan(points=row.vertices.astype(np.float64), faces=dataset.template.faces)
            report["target"] = row.label
        else:
            scan = read_scan(target)
            report["target"] = str(target)
            factor, note = scan_unit_scale(
                scan.points,
                dataset.template.vertices,
                template_unit=dataset.unit,
                scan_unit=scan_unit,
                where=target,
            )
            scan = scan.scaled(factor)
            if note:
                report["notes"].append(note)
        if not as_scan and not partial:
            registered = _registered(dataset, scan)
    lmk_points = lmk_template = None
    if landmarks is not None or model_landmarks is not None:
        from deep3dmm.errors import ConfigError

        if landmarks is None or model_landmarks is None:
            raise ConfigError("landmarks need both --landmarks and --model-landmarks")
        lmk_points = read_scan_landmarks(landmarks) * factor
        lmk_template = read_template_landmarks(
            model_landmarks,
            num_vertices=dataset.template.num_vertices,
            num_faces=dataset.template.num_faces,
        )
        from deep3dmm.registration.landmarks import check_counts

        check_counts(lmk_points, lmk_template, scan_path=landmarks, template_path=model_landmarks)
    result = fit(
        fm,
        registered=registered,
        scan=None if registered is not None else scan,
        partial=partial,
        landmarks=lmk_points,
        model_landmarks=lmk_template,
        options=options,
        progress=progress,
    )
    error_mm, target_mesh = None, None
    if registered is not None:
        error_mm = np.linalg.norm(result.vertices[0] - registered, axis=-1) * fm.to_mm
        report["per_vertex_mm"] = {
            "mean": float(error_mm.mean()),
            "median": float(np.median(error_mm)),
        }
        encoder = registered_reconstruction_mm(fm, registered[None])[0]
        report["encoder_mm"] = float(encoder)
        target_mesh = (registered, dataset.template.faces)
    elif scan is not None:
        distances, error_mm = scan_report(result.vertices[0], fm.faces, scan, to_mm=fm.to_mm)
        report["distances"] = distances
        target_mesh = (scan.points, scan.faces if scan.has_faces else None)
        if partial:  # the fit's colour: distance of the scan's side only is meaningful
            report["notes"].append(
                "partial scan: regions without scan points are filled by "
                "the model (their distance to the scan is large)"
            )
        residual = distances["scan_to_result"]["median_mm"]
        if residual > options.warn_mm:
            message = (
                f"no latent code explains this target well: median scan -> fit "
                f"distance {residual:.2f} mm > {options.warn_mm:g} mm"
            )
            logger.warning(message)
            report["warning"] = message
    else:
        report["notes"].append("landmarks only: no surface to compare with, no error picture")
    if lmk_points is not None:
        positions = lmk_template.positions(result.vertices[0], fm.faces)
        report["landmarks_mm"] = float(
            np.linalg.norm(positions - lmk_points, axis=1).mean() * fm.to_mm
        )
    if registered is not None and float(error_mm.mean()) > options.warn_mm:
        message = f"no latent code explains this target well: mean error {error_mm.mean():.2f} mm"
        logger.warning(message)
        report["warning"] = message
    from deep3dmm.fitting.outputs import write_fit

    return write_fit(
        out_dir,
        result,
        0,
        fm.faces,
        report,
        options=options,
        target=target_mesh,
        error_mm=error_mm,
        figure=figure,
    )


def registered_reconstruction_mm(fm: FitModel, vertices: np.ndarray) -> np.ndarray:
    """The encoder's mean per-vertex reconstruction error ``(B,)`` in mm."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(np.asarray(vertices, np.float32), device=fm.mean.device)
        recon = fm.model((x - fm.mean) / fm.std) * fm.std + fm.mean
        return ((recon - x).norm(dim=-1).mean(dim=1) * fm.to_mm).cpu().numpy()


def fit_split(
    run,
    out_dir: str | os.PathLike,
    *,
    split: str = "test",
    data: str | os.PathLike | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    options: FitOptions | None = None,
    progress: bool = True,
) -> dict:
    """Fit every mesh of a split (vectorised batches); write ``fit_<split>.csv`` and a summary.

    Returns:
        ``{"meshes", "encoder_mm", "fitted_mm", "better", "seconds", "table"}`` (means in mm;
        ``better`` = fraction of meshes whose fit beats the encoder).
    """
    from tqdm.auto import tqdm

    from deep3dmm.analysis.inputs import split_rows
    from deep3dmm.registration.report import write_json

    options = options or FitOptions()
    dataset = run.open_dataset(data)
    run.split.check(len(dataset))
    rows = split_rows(run, split, fix="fit another split")
    if limit is not None:
        rows = rows[: int(limit)]
    fm = FitModel.from_run(run, dataset)
    encoder, fitted, seconds = [], [], 0.0
    for start in tqdm(
        range(0, len(rows), batch_size),
        desc=f"fit {split}",
        unit="batch",
        disable=None if progress else True,
    ):
        batch = np.asarray(dataset.vertices[rows[start : start + batch_size]], np.float32)
        encoder.append(registered_reconstruction_mm(fm, batch))
        result = fit(fm, registered=batch, options=options)
        fitted.append(np.linalg.norm(result.vertices - batch, axis=-1).mean(axis=1) * fm.to_mm)
        seconds += result.seconds
    encoder, fitted = np.concatenate(encoder), np.concatenate(fitted)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "subject", "sequence", "frame", "encoder_mm", "fitted_mm"])
    for row, e, f in zip(rows, encoder, fitted):
        entry = dataset.index[int(row)]
        writer.writerow(
            [int(row), entry.subject, entry.sequence, entry.frame, f"{e:.4f}", f"{f:.4f}"]
        )
    out = Path(out_dir)
    atomic_write_text(out / f"fit_{split}.csv", buffer.getvalue())
    summary = {
        "split": split,
        "meshes": int(len(rows)),
        "encoder_mm": float(encoder.mean()),
        "fitted_mm": float(fitted.mean()),
        "better": float((fitted <= encoder + 1e-6).mean()),
        "seconds": round(seconds, 2),
        "seconds_per_mesh": round(seconds / len(rows), 4),
        "table": f"fit_{split}.csv",
        "options": dataclasses.asdict(options),
    }
    write_json(out / f"fit_{split}.json", summary)
    return summary
