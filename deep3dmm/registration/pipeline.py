"""Register scan files to a template: one scan (mesh + report + heat map) or a folder (dataset).

Files in, files out; the numerical work is in :mod:`.rigid`, :mod:`.nonrigid` and
:mod:`.report`. A folder of scans becomes an ordinary prepared dataset (the format
``deep3dmm train`` reads) with the per-scan registration summary in its meta.json.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deep3dmm.errors import ConfigError, DatasetError, Deep3DMMError
from deep3dmm.mesh.template import UNITS, Template
from deep3dmm.registration.landmarks import (
    check_counts,
    read_scan_landmarks,
    read_template_landmarks,
)
from deep3dmm.registration.nonrigid import DEFAULT_STEPS, Registration, register_scan
from deep3dmm.registration.report import residual_figure, scan_report, write_json
from deep3dmm.registration.scan import SCAN_SUFFIXES, read_scan, scan_unit_scale

__all__ = ["RegistrationOptions", "load_template", "register_file", "register_folder"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationOptions:
    """Options shared by single-scan and folder registration.

    Attributes:
        template_landmarks: file of template vertex ids or ``face w0 w1 w2`` rows.
        scan_unit: the scans' unit ("m", "cm", "mm"), or ``None`` to detect it by size.
        frame: "template" (undo the rigid motion; datasets need aligned meshes) or "scan".
        steps: NICP schedule rows.
        distance_threshold: NICP outlier distance (fraction of the template's bbox diagonal).
        prior: a run folder (its dataset's train split) or a prepared dataset of meshes
            registered to the template: fit their PCA model to the scan instead of NICP.
        prior_components: principal components kept.
        deform: with a prior, then deform its fit onto the scan (smooth, point-to-plane).
    """

    template_landmarks: str | None = None
    scan_unit: str | None = None
    frame: str = "template"
    steps: tuple = DEFAULT_STEPS
    distance_threshold: float = 0.1
    prior: str | None = None
    prior_components: int = 64
    deform: bool = True

    def check(self) -> None:
        """Raise :class:`ConfigError` on a bad option."""
        if self.frame not in ("template", "scan"):
            raise ConfigError(f"frame must be 'template' or 'scan', got {self.frame!r}")
        if self.prior_components < 1:
            raise ConfigError(f"prior_components must be >= 1, got {self.prior_components}")

    def shape_prior(self, template: Template):
        """The :class:`ShapePrior` of ``prior`` (``None`` without one), checked on the template."""
        if self.prior is None:
            return None
        from deep3dmm.registration.shape_prior import load_shape_prior

        prior = load_shape_prior(self.prior, components=self.prior_components)
        if prior.num_vertices != template.num_vertices or prior.unit != template.unit:
            raise ConfigError(
                f"the prior {self.prior} has {prior.num_vertices} vertices in {prior.unit}, "
                f"the template {template.num_vertices} in {template.unit}",
                fix="use a prior built on meshes registered to this template",
            )
        return prior


def load_template(path: str | os.PathLike, *, unit: str | None = None) -> Template:
    """A template from a mesh file or a prepared dataset folder (whose unit it takes).

    Raises:
        ConfigError: the unit cannot be told from the mesh size and none was given.
    """
    from deep3dmm.data import PreparedDataset
    from deep3dmm.data.importers.reading import resolve_unit

    path = Path(path)
    if path.is_dir():
        dataset = PreparedDataset(path)
        return dataset.template
    template = Template.load(path)
    return Template(
        template.vertices,
        template.faces,
        name=template.name,
        unit=resolve_unit(unit, template, where=path),
    )


def _register(
    template: Template,
    scan_path: Path,
    landmarks_path: Path | None,
    options: RegistrationOptions,
    prior=None,
) -> tuple[Registration, dict, np.ndarray]:
    """Register one scan file; returns the registration, its report and the residual (mm)."""
    scan = read_scan(scan_path)
    factor, note = scan_unit_scale(
        scan.points,
        template.vertices,
        template_unit=template.unit,
        scan_unit=options.scan_unit,
        where=scan_path,
    )
    scan = scan.scaled(factor)
    lmk_template = lmk_scan = None
    if landmarks_path is not None:
        if options.template_landmarks is None:
            raise ConfigError("scan landmarks need --template-landmarks (their template ids)")
        lmk_template = read_template_landmarks(
            options.template_landmarks,
            num_vertices=template.num_vertices,
            num_faces=template.num_faces,
        )
        lmk_scan = read_scan_landmarks(landmarks_path) * factor
        check_counts(
            lmk_scan,
            lmk_template,
            scan_path=landmarks_path,
            template_path=options.template_landmarks,
        )
    registration = register_scan(
        template.vertices,
        template.faces,
        scan,
        template_landmarks=lmk_template,
        scan_landmarks=lmk_scan,
        steps=options.steps,
        distance_threshold=options.distance_threshold,
        unit_scale=factor,
        notes=[note] if note else [],
        shape_prior=prior,
        deform=options.deform,
    )
    to_mm = UNITS[template.unit] * 1000.0
    report, residual = scan_report(registration.vertices, template.faces, scan, to_mm=to_mm)
    report.update(
        scan=str(scan_path),
        template=template.name,
        unit=template.unit,
        unit_scale=factor,
        landmarks=0 if lmk_scan is None else len(lmk_scan),
        iterations=registration.iterations,
        seconds=round(registration.seconds, 3),
        similarity=registration.similarity.to_json(),
        frame=options.frame,
        notes=registration.notes,
    )
    for line in registration.notes:
        logger.warning("%s: %s", scan_path.name, line)
    return registration, report, residual


def _output_vertices(registration: Registration, frame: str) -> np.ndarray:
    return registration.in_template_frame() if frame == "template" else registration.vertices


def register_file(
    scan_path: str | os.PathLike,
    template: Template,
    out: str | os.PathLike,
    *,
    landmarks: str | os.PathLike | None = None,
    options: RegistrationOptions = RegistrationOptions(),
    figure: bool = True,
) -> dict:
    """Register one scan; writes ``OUT`` (mesh, template topology), ``OUT.json`` and ``OUT.png``.

    Args:
        scan_path: the scan (mesh or point cloud).
        template: the template (its unit is the output's unit).
        out: output mesh path (``.ply``, ``.obj`` or ``.off``).
        landmarks: the scan's landmark points (needs ``options.template_landmarks``).
        options: see :class:`RegistrationOptions`.
        figure: also render the residual heat map.

    Returns:
        The report (also written as JSON next to ``out``).
    """
    from deep3dmm.mesh import write_mesh

    options.check()
    out = Path(out)
    registration, report, residual = _register(
        template,
        Path(scan_path),
        None if landmarks is None else Path(landmarks),
        options,
        options.shape_prior(template),
    )
    write_mesh(out, _output_vertices(registration, options.frame), template.faces)
    report["mesh"] = str(out)
    if figure:
        scan = read_scan(scan_path).scaled(registration.unit_scale)
        back = registration.similarity.rigid_inverse()
        scan = scan.transformed(back.matrix)
        png = residual_figure(
            registration.in_template_frame(),
            template.faces,
            residual,
            out.with_suffix(".png"),
            scan=scan,
        )
        report["figure"] = str(png)
    write_json(out.with_suffix(".json"), report)
    return report


def _folder_task(args) -> tuple[np.ndarray | None, dict]:
    template, path, landmarks, options, prior = args
    try:
        registration, report, _ = _register(template, path, landmarks, options, prior)
    except Deep3DMMError as exc:
        return None, {"scan": str(path), "error": str(exc), "kind": type(exc).__name__}
    return _output_vertices(registration, options.frame), report


def register_folder(
    src: str | os.PathLike,
    template: Template,
    out_dir: str | os.PathLike,
    *,
    landmarks_dir: str | os.PathLike | None = None,
    options: RegistrationOptions = RegistrationOptions(),
    skip_bad: bool = False,
    workers: int | None = None,
    suffixes: Sequence[str] = SCAN_SUFFIXES,
):
    """Register every scan under ``src`` and write a prepared dataset (atomically).

    Rows are the scans in natural sorted order of their relative paths; subject = the
    file stem, sequence = the relative folder (or ``"scans"``). Scan landmarks, when
    given, are ``LANDMARKS_DIR/<stem>.txt`` (or ``.csv`` / ``.npy``).

    Raises:
        DatasetError: no scans, or (without ``skip_bad``) the first scan that fails.
    """
    from deep3dmm.data.importers.reading import list_mesh_files, resolve_workers
    from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter

    options.check()
    src = Path(src)
    files = list_mesh_files(src, suffixes=suffixes) if src.is_dir() else []
    if not files:
        raise DatasetError(
            "no scans found", path=src, fix=f"put scans ({', '.join(SCAN_SUFFIXES)}) in the folder"
        )
    pairs = []
    prior = options.shape_prior(template)
    for path in files:
        lmk = None
        if landmarks_dir is not None:
            found = [Path(landmarks_dir) / f"{path.stem}{s}" for s in (".txt", ".csv", ".npy")]
            lmk = next((p for p in found if p.is_file()), None)
            if lmk is None:
                raise DatasetError(
                    f"no landmarks for {path.name}",
                    path=landmarks_dir,
                    fix=f"add {path.stem}.txt (x y z rows)",
                )
        pairs.append((template, path, lmk, options, prior))
    workers = min(resolve_workers(workers), len(pairs))
    summary = []
    with (
        PreparedDatasetWriter(
            out_dir,
            template,
            len(pairs),
            source="registered-scans",
            unit=template.unit,
            params={
                "src": os.fspath(src.resolve()),
                "template": template.name,
                "frame": options.frame,
                "steps": [list(s) for s in options.steps],
                "prior": options.prior,
            },
        ) as writer,
        tqdm(total=len(pairs), unit="scan", desc="register", disable=None) as bar,
    ):
        if workers <= 1:
            results = map(_folder_task, pairs)
        else:
            pool = ProcessPoolExecutor(workers)
            results = pool.map(_folder_task, pairs)
        try:
            for frame, ((_, path, *_), (vertices, report)) in enumerate(zip(pairs, results)):
                relative = path.relative_to(src)
                if vertices is None:
                    if not skip_bad:
                        raise DatasetError(
                            f"registration failed: {report['error']}",
                            path=path,
                            fix="fix or remove the scan, or pass --skip-bad",
                        )
                    logger.warning("skipped %s: %s", path, report["error"])
                    writer.skip(relative.as_posix(), report["error"])
                else:
                    sequence = relative.parent.as_posix() if relative.parent.parts else "scans"
                    row = IndexRow(path.stem, sequence, frame, relative.as_posix())
                    writer.add(vertices.astype(np.float32), [row])
                    summary.append(
                        {
                            k: report[k]
                            for k in (
                                "scan",
                                "scan_to_result",
                                "result_to_scan",
                                "iterations",
                                "seconds",
                                "unit_scale",
                                "notes",
                            )
                        }
                    )
                bar.update(1)
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
        writer.extra_meta["registration"] = summary
    return PreparedDataset(out_dir)
