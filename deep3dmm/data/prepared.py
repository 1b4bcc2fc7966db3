"""The prepared-dataset format that every importer and generator writes and training reads.

A prepared dataset is a folder::

    template.ply   the shared topology (binary PLY)
    vertices.npy   (N, V, 3) float32, opened memory-mapped
    index.csv      one row per mesh: subject, sequence, frame, source
    meta.json      source, unit ("m", "cm" or "mm"), counts, parameters, content hash

It is written atomically (built in a temporary sibling folder and moved into
place), so an interrupted import never leaves half a dataset.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_dir, recover_dir
from deep3dmm.errors import DatasetError, Deep3DMMError
from deep3dmm.mesh.template import UNITS, Template

__all__ = ["IndexRow", "PreparedDataset", "PreparedDatasetWriter", "write_prepared_dataset"]

FORMAT_VERSION = 1
FILES = ("template.ply", "vertices.npy", "index.csv", "meta.json")


@dataclass(frozen=True)
class IndexRow:
    """Where one mesh of a prepared dataset came from."""

    subject: str
    sequence: str
    frame: int
    source: str


class PreparedDatasetWriter:
    """Write a prepared dataset mesh by mesh (or in batches), atomically.

    Args:
        out_dir: the dataset folder to create (replaced only when writing succeeds).
        template: the shared topology; every added mesh is validated against it.
        capacity: the largest number of meshes that will be added (unused slots,
            e.g. from skipped bad files, are trimmed when closing).
        source: importer or generator name ("coma", "anny-faces", ...).
        unit: "m", "cm" or "mm".
        params: creation parameters recorded in meta.json.
        extra_meta: further top-level meta.json entries (e.g. ``predefined_split``:
            ``{"test": [[start, stop], ...]}`` row ranges fixed by the source).

    Use as a context manager::

        with PreparedDatasetWriter(out, template, n, source="coma", unit="m") as w:
            w.add(vertices, rows)        # (n, V, 3), n IndexRows
            w.skip("bad.ply", "reason")  # recorded in meta.json
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        template: Template,
        capacity: int,
        *,
        source: str,
        unit: str,
        params: dict | None = None,
        extra_meta: dict | None = None,
    ):
        if unit not in UNITS:
            raise DatasetError(f"unit must be one of {sorted(UNITS)}, got {unit!r}")
        if capacity < 1:
            raise DatasetError("a dataset needs at least one mesh", path=out_dir)
        self.out_dir = Path(out_dir)
        self.template = template
        self.capacity = int(capacity)
        self.source, self.unit, self.params = source, unit, dict(params or {})
        self.extra_meta = dict(extra_meta or {})
        self.rows: list[IndexRow] = []
        self.skipped: list[dict[str, str]] = []
        self._digest = hashlib.sha256()

    def __enter__(self) -> PreparedDatasetWriter:
        shape = (self.capacity, self.template.num_vertices, 3)
        self._dir_context = atomic_dir(self.out_dir)
        try:  # a read-only or full folder fails here already, before any file exists
            self._tmp = self._dir_context.__enter__()
        except OSError as exc:
            raise _write_error(exc, self.out_dir) from exc
        try:
            self._vertices = np.lib.format.open_memmap(
                self._tmp / "vertices.npy", mode="w+", dtype=np.float32, shape=shape
            )
            # Reserve the blocks now: a full disk is an error here, not a SIGBUS when the
            # memory map is written later.
            with open(self._tmp / "vertices.npy", "r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        except OSError as exc:
            self._vertices = None
            self._dir_context.__exit__(type(exc), exc, exc.__traceback__)
            raise _write_error(exc, self.out_dir) from exc
        return self

    def add(self, vertices: np.ndarray, rows: Sequence[IndexRow]) -> None:
        """Append meshes ``(n, V, 3)`` (or one ``(V, 3)``) with their index rows."""
        vertices = np.asarray(vertices, dtype=np.float32)
        if vertices.ndim == 2:
            vertices = vertices[None]
        if len(rows) != len(vertices):
            raise DatasetError(f"{len(vertices)} meshes but {len(rows)} index rows")
        self.template.validate(vertices, path=rows[0].source if rows else None)
        start = len(self.rows)
        if start + len(vertices) > self.capacity:
            raise DatasetError(f"more meshes than the capacity {self.capacity}", path=self.out_dir)
        self._vertices[start : start + len(vertices)] = vertices
        self._digest.update(np.ascontiguousarray(vertices).tobytes())
        self.rows.extend(rows)

    def skip(self, source: str | os.PathLike, reason: str) -> None:
        """Record a file that was left out (listed under ``skipped`` in meta.json)."""
        self.skipped.append({"source": os.fspath(source), "reason": reason})

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                try:
                    self._finish()
                except OSError as error:
                    raise _write_error(error, self.out_dir) from error
        except BaseException as error:
            self._vertices = None
            self._dir_context.__exit__(type(error), error, error.__traceback__)
            raise
        self._vertices = None
        return bool(self._dir_context.__exit__(exc_type, exc, tb))

    def _finish(self) -> None:
        count = len(self.rows)
        if count == 0:
            raise DatasetError(
                "no mesh was written", path=self.out_dir, fix="check the source folder and filters"
            )
        self._vertices.flush()
        if count < self.capacity:  # trim unused slots (skipped files)
            full = self._vertices
            trimmed = np.lib.format.open_memmap(
                self._tmp / "vertices.trim.npy",
                mode="w+",
                dtype=np.float32,
                shape=(count,) + full.shape[1:],
            )
            trimmed[:] = full[:count]
            trimmed.flush()
            del trimmed, full
            self._vertices = None
            os.replace(self._tmp / "vertices.trim.npy", self._tmp / "vertices.npy")
        self.template.save(self._tmp / "template.ply")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([f.name for f in fields(IndexRow)])
        writer.writerows(astuple(row) for row in self.rows)
        (self._tmp / "index.csv").write_text(buffer.getvalue(), encoding="utf-8")
        meta = {
            "format": FORMAT_VERSION,
            "source": self.source,
            "unit": self.unit,
            "num_meshes": count,
            "num_vertices": self.template.num_vertices,
            "num_faces": self.template.num_faces,
            "subjects": sorted({r.subject for r in self.rows}),
            "sequences": sorted({r.sequence for r in self.rows}),
            "template_hash": self.template.hash,
            "content_hash": self._digest.hexdigest()[:16],
            "params": self.params,
            "skipped": self.skipped,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        meta.update(self.extra_meta)
        (self._tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _write_error(exc: OSError, out_dir: Path) -> DatasetError:
    """A failed write (disk full, file too large, read-only) as a typed error."""
    return DatasetError(
        f"could not write the dataset ({exc.strerror or exc}); nothing was replaced",
        path=out_dir,
        fix="free disk space or choose another --out (any previous dataset there is intact)",
    )


def write_prepared_dataset(
    out_dir: str | os.PathLike,
    template: Template,
    vertices: np.ndarray,
    rows: Sequence[IndexRow],
    *,
    source: str,
    unit: str,
    params: dict | None = None,
    extra_meta: dict | None = None,
) -> PreparedDataset:
    """Write all meshes ``(N, V, 3)`` at once; returns the opened dataset."""
    with PreparedDatasetWriter(
        out_dir,
        template,
        len(vertices),
        source=source,
        unit=unit,
        params=params,
        extra_meta=extra_meta,
    ) as writer:
        writer.add(vertices, rows)
    return PreparedDataset(out_dir)


class PreparedDataset:
    """A prepared dataset folder, opened read-only with vertices memory-mapped.

    Attributes:
        path: the folder.
        meta: the parsed meta.json.
        template: the shared :class:`Template` (unit from meta.json).
        vertices: ``(N, V, 3) float32`` memory map.
        index: one :class:`IndexRow` per mesh.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        recover_dir(self.path)  # a crash mid-swap of a rewrite kept the old folder aside
        if not self.path.is_dir():
            raise DatasetError(
                "prepared dataset folder not found",
                path=self.path,
                fix="create it with `deep3dmm data import` or `deep3dmm data make`",
            )
        missing = [name for name in FILES if not (self.path / name).is_file()]
        if missing:
            raise DatasetError(
                f"not a prepared dataset: missing {', '.join(missing)}",
                path=self.path,
                fix="re-create it with `deep3dmm data import` or `deep3dmm data make`",
            )
        try:
            self.meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"meta.json is unreadable ({exc})", path=self.path) from exc
        self._check_meta()
        try:
            self.vertices = np.load(self.path / "vertices.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"vertices.npy is unreadable ({exc})", path=self.path / "vertices.npy"
            ) from exc
        self.index = self._read_index()
        try:
            self.template = Template.load(
                self.path / "template.ply", unit=self.meta.get("unit", "m"), name=self.path.name
            )
        except Deep3DMMError as exc:
            raise DatasetError(f"template.ply is unusable ({exc.message})", path=self.path) from exc
        if self.vertices.ndim != 3 or self.vertices.shape[1:] != (self.template.num_vertices, 3):
            raise DatasetError(
                f"vertices.npy has shape {self.vertices.shape}, expected "
                f"(N, {self.template.num_vertices}, 3) for the template",
                path=self.path,
            )
        if len(self.index) != len(self.vertices):
            raise DatasetError(
                f"index.csv lists {len(self.index)} meshes but vertices.npy holds "
                f"{len(self.vertices)}",
                path=self.path,
                fix="the folder is inconsistent; re-create it",
            )

    def __getstate__(self) -> dict:
        # Pickle the path, not the memory map (DataLoader workers under spawn reopen it).
        state = self.__dict__.copy()
        state["vertices"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.vertices = np.load(self.path / "vertices.npy", mmap_mode="r")

    def _check_meta(self) -> None:
        """meta.json must be an object with a known ``unit``.

        Raises:
            DatasetError: another JSON value, or a unit not in ``UNITS``.
        """
        path = self.path / "meta.json"
        if not isinstance(self.meta, dict):
            raise DatasetError(
                f"meta.json holds a {type(self.meta).__name__}, not an object", path=path
            )
        unit = self.meta.get("unit", "m")
        if not isinstance(unit, str) or unit not in UNITS:
            raise DatasetError(
                f"meta.json has unit {unit!r}, expected one of {', '.join(UNITS)}",
                path=path,
                fix='set "unit" to the unit of the coordinates ("m", "cm" or "mm")',
            )

    def _read_index(self) -> list[IndexRow]:
        path = self.path / "index.csv"
        expected = [f.name for f in fields(IndexRow)]
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames != expected:
                    raise DatasetError(
                        f"index.csv columns are {reader.fieldnames}, expected {expected}",
                        path=path,
                    )
                return [
                    IndexRow(r["subject"], r["sequence"], int(r["frame"]), r["source"])
                    for r in reader
                ]
        except (TypeError, ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
            raise DatasetError(f"index.csv has a malformed row ({exc})", path=path) from exc

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"PreparedDataset({str(self.path)!r}, meshes={len(self)}, "
            f"vertices={self.template.num_vertices}, unit={self.unit!r})"
        )

    @property
    def unit(self) -> str:
        """Length unit of the coordinates ("m", "cm" or "mm")."""
        return self.meta.get("unit", "m")

    @property
    def to_millimetres(self) -> float:
        """Factor that converts coordinates to millimetres."""
        return UNITS[self.unit] * 1000.0

    @cached_property
    def subjects(self) -> np.ndarray:
        """Subject of each mesh, ``(N,)`` str."""
        return np.array([r.subject for r in self.index])

    @cached_property
    def sequences(self) -> np.ndarray:
        """Sequence (expression / motion) of each mesh, ``(N,)`` str."""
        return np.array([r.sequence for r in self.index])

    @cached_property
    def frames(self) -> np.ndarray:
        """Frame number of each mesh, ``(N,)`` int64."""
        return np.array([r.frame for r in self.index], dtype=np.int64)
