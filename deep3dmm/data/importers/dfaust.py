"""DFAUST (Bogo et al., "Dynamic FAUST: Registering Human Bodies in Motion", CVPR 2017).

Two layouts (6890-vertex SMPL topology, metres):

- the official registrations: ``registrations_m.hdf5`` and/or ``registrations_f.hdf5``
  (SRC is the folder holding them, or one such file), each with datasets
  ``<subjectid>_<sequence>`` of shape ``(6890, 3, frames)`` and ``faces`` ``(13776, 3)``;
- an exported OBJ tree: ``SRC/<subjectid>_<sequence>/<frame:05d>.obj``.

The template is the faces plus the first frame of the first sequence (sorted by key).
Rows are sorted by subject, sequence, frame.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from deep3dmm.data.importers.reading import (
    first_template,
    import_mesh_files,
    natural_key,
    relative_source,
    row_order,
    trailing_number,
)
from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter
from deep3dmm.errors import ConfigError, DatasetError, Deep3DMMError, TopologyMismatchError
from deep3dmm.mesh.template import Template

__all__ = ["import_dfaust"]

logger = logging.getLogger(__name__)

HDF5_NAMES = ("registrations_f.hdf5", "registrations_m.hdf5")
KEY = re.compile(r"^(\d+)_(.+)$")
LAYOUT = (
    "a folder with registrations_m.hdf5 / registrations_f.hdf5, one such file, "
    "or an OBJ tree SRC/<subjectid>_<sequence>/<frame:05d>.obj"
)


def _split_key(key: str, path: Path) -> tuple[str, str]:
    match = KEY.match(key)
    if not match:
        raise DatasetError(
            f"key {key!r} is not <subjectid>_<sequence>", path=path, fix=f"expected {LAYOUT}"
        )
    return match.group(1), match.group(2)


def _wanted(subject, sequence, subjects, sequences) -> bool:
    return (not subjects or subject in subjects) and (not sequences or sequence in sequences)


def _import_hdf5(files, out_dir, *, skip_bad, subjects, sequences, stride, params):
    handles = [h5py.File(path, "r") for path in files]
    try:
        entries = []  # (subject, sequence, key, handle, path)
        faces = None
        for handle, path in zip(handles, files):
            if "faces" not in handle:
                raise DatasetError(
                    "no 'faces' dataset in the HDF5 file", path=path, fix=f"expected {LAYOUT}"
                )
            these = np.asarray(handle["faces"], dtype=np.int64)
            if faces is not None and not np.array_equal(faces, these):
                raise TopologyMismatchError(
                    "faces differ from those of the other registrations file", path=path
                )
            faces = these
            for key in handle.keys():
                if key == "faces":
                    continue
                subject, sequence = _split_key(key, path)
                if _wanted(subject, sequence, subjects, sequences):
                    entries.append((subject, sequence, key, handle, path))
        if not entries:
            raise DatasetError(
                "no sequences found" + (" matching the filters" if subjects or sequences else ""),
                path=files[0],
                fix=f"expected {LAYOUT}",
            )
        entries.sort(key=lambda e: (natural_key(e[0]), natural_key(e[1])))
        first = entries[0]
        data0 = first[3][first[2]]
        if data0.ndim != 3 or data0.shape[1] != 3:
            raise DatasetError(
                f"sequence {first[2]!r} has shape {data0.shape}, expected (V, 3, frames)",
                path=first[4],
            )
        template = Template(np.asarray(data0[:, :, 0]), faces, name="dfaust", unit="m")
        capacity = sum(-(-e[3][e[2]].shape[-1] // stride) for e in entries)
        with (
            PreparedDatasetWriter(
                out_dir, template, capacity, source="dfaust", unit="m", params=params
            ) as writer,
            tqdm(total=capacity, unit="mesh", desc="import dfaust", disable=None) as bar,
        ):
            for subject, sequence, key, handle, path in entries:
                source = f"{path.name}:{key}"
                data = handle[key]
                try:
                    if data.ndim != 3 or data.shape[:2] != (template.num_vertices, 3):
                        raise TopologyMismatchError(
                            f"sequence {key!r} has shape {data.shape}, expected "
                            f"({template.num_vertices}, 3, frames)",
                            path=path,
                        )
                    frames = np.arange(0, data.shape[-1], stride)
                    vertices = np.asarray(data[:, :, ::stride], dtype=np.float32)
                    vertices = np.ascontiguousarray(vertices.transpose(2, 0, 1))  # (T, V, 3)
                    template.validate(vertices, path=f"{path}:{key}")
                except Deep3DMMError as exc:
                    if not skip_bad:
                        raise
                    logger.warning("skipped %s", exc)
                    writer.skip(source, exc.message)
                    continue
                rows = [IndexRow(subject, sequence, int(f), source) for f in frames]
                writer.add(vertices, rows)
                bar.update(len(rows))
    finally:
        for handle in handles:
            handle.close()
    return PreparedDataset(out_dir)


def _obj_files(src: Path, subjects, sequences) -> list[tuple[Path, IndexRow]]:
    files = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        subject, sequence = _split_key(folder.name, folder)
        if not _wanted(subject, sequence, subjects, sequences):
            continue
        for path in folder.iterdir():
            if path.suffix.lower() != ".obj":
                continue
            frame = trailing_number(path.stem)
            if frame is None:
                raise DatasetError(
                    "file name has no frame number", path=path, fix=f"expected {LAYOUT}"
                )
            files.append((path, IndexRow(subject, sequence, frame, relative_source(path, src))))
    files.sort(key=row_order)
    return files


def import_dfaust(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    subjects: Sequence[str] | None = None,
    sequences: Sequence[str] | None = None,
    stride: int = 1,
) -> PreparedDataset:
    """Import DFAUST registrations (HDF5 or OBJ tree; unit: metres).

    Args:
        src: a folder with ``registrations_{m,f}.hdf5``, one such file, or the OBJ tree.
        out_dir: the prepared dataset folder to write.
        skip_bad: skip bad sequences/files (recorded in meta.json) instead of stopping.
        workers: reader processes for the OBJ tree (HDF5 is read sequentially: one file).
        subjects: import only these subject ids (e.g. ``["50002"]``).
        sequences: import only these sequences (e.g. ``["chicken_wings"]``).
        stride: keep every ``stride``-th frame (HDF5 only; frame numbers are kept).
    """
    src = Path(src)
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    params = {
        "src": os.fspath(src.resolve()),
        "subjects": list(subjects or []),
        "sequences": list(sequences or []),
        "stride": stride,
    }
    if src.is_file():
        if src.suffix.lower() not in (".hdf5", ".h5"):
            raise DatasetError("not an HDF5 file", path=src, fix=f"expected {LAYOUT}")
        hdf5 = [src]
    elif src.is_dir():
        hdf5 = [src / name for name in HDF5_NAMES if (src / name).is_file()]
    else:
        raise DatasetError("DFAUST source not found", path=src, fix=f"expected {LAYOUT}")
    if hdf5:
        try:
            return _import_hdf5(
                hdf5,
                out_dir,
                skip_bad=skip_bad,
                subjects=subjects,
                sequences=sequences,
                stride=stride,
                params=params,
            )
        except OSError as exc:
            raise DatasetError(f"cannot read HDF5 ({exc})", path=hdf5[0]) from exc
    if stride != 1:
        raise ConfigError("stride applies to the HDF5 layout only")
    if not any(p.is_dir() for p in src.iterdir()):
        raise DatasetError("no DFAUST data here", path=src, fix=f"expected {LAYOUT}")
    files = _obj_files(src, subjects, sequences)
    if not files:
        raise DatasetError("no DFAUST OBJ files found", path=src, fix=f"expected {LAYOUT}")
    template = first_template([p for p, _ in files], skip_bad=skip_bad, unit="m", name="dfaust")
    return import_mesh_files(
        files,
        out_dir,
        template,
        source="dfaust",
        unit="m",
        params=params,
        skip_bad=skip_bad,
        workers=workers,
    )
