"""Shared machinery of the file-based importers.

Sorted file lists, parallel chunked reading, validation of every mesh against the
template, and writing the prepared dataset.

Reading dominates an import of many small files, so chunks of files are read in a
process pool (``concurrent.futures``); results come back in order, so the prepared
dataset keeps the sorted order whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deep3dmm import errors
from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter
from deep3dmm.errors import ConfigError, DatasetError, Deep3DMMError
from deep3dmm.mesh.io import MESH_SUFFIXES, read_mesh
from deep3dmm.mesh.template import Template, guess_unit

__all__ = [
    "natural_key",
    "trailing_number",
    "list_mesh_files",
    "resolve_unit",
    "resolve_workers",
    "import_mesh_files",
    "read_chunks",
    "first_template",
    "load_template",
    "row_order",
    "relative_source",
]

logger = logging.getLogger(__name__)

CHUNK = 32  # files per pool task
_TEMPLATE: Template | None = None  # set in each worker by _init_worker


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers numerically (``frame2`` < ``frame10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def trailing_number(stem: str) -> int | None:
    """The number that ends a file stem (``bareteeth.000012`` -> 12), or ``None``."""
    match = re.search(r"(\d+)$", stem)
    return int(match.group(1)) if match else None


def list_mesh_files(root: Path, *, suffixes: Sequence[str] = MESH_SUFFIXES) -> list[Path]:
    """Every mesh file under ``root`` (recursive), in natural sorted order of relative paths."""
    suffixes = tuple(s.lower() for s in suffixes)
    files = [p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.relative_to(root).as_posix()))


def resolve_unit(unit: str | None, template: Template, *, where: os.PathLike | str) -> str:
    """The given unit, or the one unit under which the template has human scale."""
    if unit is not None:
        return unit
    guesses = guess_unit(template.vertices)
    if len(guesses) != 1:
        extent = float(np.ptp(template.vertices, axis=0).max())
        raise ConfigError(
            f"cannot tell the length unit of meshes {extent:.4g} units wide "
            f"(plausible: {', '.join(guesses) or 'none'})",
            path=where,
            fix="pass --unit m, cm or mm",
        )
    return guesses[0]


def resolve_workers(workers: int | None) -> int:
    """Worker processes: the given number, or all cores (at most 8)."""
    if workers is None:
        return max(1, min(8, os.cpu_count() or 1))
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    return max(1, workers)


def _init_worker(template: Template) -> None:
    global _TEMPLATE
    _TEMPLATE = template


def _read_one(path: Path, template: Template) -> np.ndarray:
    vertices, faces = read_mesh(path)
    template.check_registered((vertices, faces), path=path)
    return vertices


def _read_chunk(paths: Sequence[Path], template: Template | None = None):
    """Read and validate files; returns ``(vertices (k, V, 3), [None | (kind, msg, fix)])``."""
    template = template or _TEMPLATE
    good, status = [], []
    for path in paths:
        try:
            good.append(_read_one(path, template))
            status.append(None)
        except Deep3DMMError as exc:
            status.append((type(exc).__name__, exc.message, exc.fix))
        except Exception as exc:  # anything a parser can throw on a broken file
            status.append(("MeshFormatError", f"cannot read ({type(exc).__name__}: {exc})", None))
    shape = (len(good), template.num_vertices, 3)
    return (np.stack(good) if good else np.empty(shape, np.float32)), status


def read_chunks(chunks: list, template: Template, workers: int) -> Iterator:
    """Read chunks of files (in a process pool when ``workers > 1``), results in order.

    Yields, per chunk, ``(vertices (k, V, 3) of the good files, status per file)`` with
    status ``None`` for a good file, else ``(error class name, message, fix)``.
    """
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield _read_chunk(chunk, template)
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(template,)) as pool:
        todo = iter(chunks)
        pending = deque(pool.submit(_read_chunk, c) for c in islice(todo, 2 * workers))
        try:
            while pending:
                result = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(_read_chunk, following))
                yield result
        finally:
            for future in pending:
                future.cancel()


def _error(kind: str, message: str, fix: str | None, path: Path) -> Deep3DMMError:
    cls = getattr(errors, kind, errors.MeshFormatError)
    return cls(message, path=path, fix=fix or "fix or remove the file, or pass --skip-bad")


def first_template(
    files: Sequence[Path], *, skip_bad: bool, unit: str = "m", name: str = "template"
) -> Template:
    """The first readable mesh of ``files`` as the template (bad files skipped if allowed)."""
    for path in files:
        try:
            vertices, faces = read_mesh(path)
        except Deep3DMMError:
            if skip_bad:
                continue
            raise
        return Template(vertices, faces, name=name, unit=unit)
    raise DatasetError("no readable mesh file", path=files[0].parent if files else None)


def load_template(
    template: str | os.PathLike | None,
    files: Sequence[Path],
    *,
    skip_bad: bool,
    unit: str = "m",
    name: str = "template",
) -> Template:
    """The template file when one is given, else the first readable mesh of ``files``."""
    if template is not None:
        return Template.load(template, unit=unit, name=name)
    return first_template(files, skip_bad=skip_bad, unit=unit, name=name)


def row_order(item: tuple[Path, IndexRow]) -> tuple:
    """Sort key of ``(path, IndexRow)`` pairs: subject, sequence (natural order), frame."""
    row = item[1]
    return natural_key(row.subject), natural_key(row.sequence), row.frame


def import_mesh_files(
    files: Sequence[tuple[Path, IndexRow]],
    out_dir: str | os.PathLike,
    template: Template,
    *,
    source: str,
    unit: str,
    params: dict | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
    chunk: int | None = None,
) -> PreparedDataset:
    """Read mesh files (in the given order), validate each against the template, write.

    Args:
        files: ``(path, IndexRow)`` pairs, already in the dataset's sorted order.
        out_dir: the prepared dataset folder (written atomically).
        template: every mesh must have its vertex count and exactly its faces.
        source: importer name, recorded in meta.json.
        unit: length unit, recorded in meta.json.
        params: creation parameters, recorded in meta.json.
        skip_bad: skip unreadable/mismatching files (listed under ``skipped`` in
            meta.json) instead of stopping at the first one.
        workers: reader processes (default: all cores, at most 8; 0 or 1 reads in-process).
        chunk: files per task (default :data:`CHUNK`).

    Raises:
        MeshFormatError, TopologyMismatchError: a bad file (named), unless ``skip_bad``.
    """
    if not files:
        raise DatasetError("no mesh files to import", path=out_dir)
    workers = resolve_workers(workers)
    chunk = chunk or CHUNK
    paths = [path for path, _ in files]
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    started = time.perf_counter()
    skipped = 0
    with (
        PreparedDatasetWriter(
            out_dir, template, len(files), source=source, unit=unit, params=params
        ) as writer,
        tqdm(total=len(files), unit="mesh", desc=f"import {source}", disable=None) as bar,
        contextlib.closing(read_chunks(chunks, template, workers)) as results,
    ):
        for number, (vertices, status) in enumerate(results):
            start = number * chunk
            rows = []
            for offset, bad in enumerate(status):
                path, row = files[start + offset]
                if bad is None:
                    rows.append(row)
                elif skip_bad:
                    error = _error(*bad, path)
                    logger.warning("skipped %s", error)
                    writer.skip(row.source, error.message)
                    skipped += 1
                else:
                    raise _error(*bad, path)
            if rows:
                writer.add(vertices, rows)
            bar.update(len(status))
    seconds = time.perf_counter() - started
    logger.info(
        "imported %d meshes (%d skipped) into %s in %.1f s (%.0f meshes/s, %d workers)",
        len(files) - skipped,
        skipped,
        out_dir,
        seconds,
        len(files) / max(seconds, 1e-9),
        workers,
    )
    return PreparedDataset(out_dir)


def relative_source(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (portable index.csv)."""
    return path.relative_to(root).as_posix()
