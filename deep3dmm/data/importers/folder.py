"""Any tree of ``.ply``/``.obj``/``.off`` meshes that share one topology (hands, bodies, ...).

Subject and sequence come from the folders between SRC and the file::

    SRC/<level 0>/<level 1>/.../<name><frame>.ply

``subject_level`` and ``sequence_level`` pick which folder level names the subject and
the sequence (0 = first folder under SRC, -1 = the file's own folder; ``None`` = not
used, recorded as ``"all"``). A level the file does not have also gives ``"all"``. The
frame is the number that ends the file name, else the file's position in its folder.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from deep3dmm.data.importers.reading import (
    import_mesh_files,
    list_mesh_files,
    load_template,
    relative_source,
    resolve_unit,
    trailing_number,
)
from deep3dmm.data.prepared import IndexRow, PreparedDataset
from deep3dmm.errors import DatasetError
from deep3dmm.mesh.io import MESH_SUFFIXES

__all__ = ["import_folder", "folder_rows"]


def _level(folders: tuple[str, ...], level: int | None) -> str:
    if level is None or not -len(folders) <= level < len(folders):
        return "all"
    return folders[level]


def folder_rows(
    files: Sequence[Path], root: Path, *, subject_level: int | None, sequence_level: int | None
) -> list[tuple[Path, IndexRow]]:
    """Index rows of sorted mesh files from their folder levels and file names."""
    position: dict[Path, int] = defaultdict(int)
    result = []
    for path in files:
        folders = path.relative_to(root).parts[:-1]
        frame = trailing_number(path.stem)
        if frame is None:
            frame = position[path.parent]
        position[path.parent] += 1
        row = IndexRow(
            _level(folders, subject_level),
            _level(folders, sequence_level),
            frame,
            relative_source(path, root),
        )
        result.append((path, row))
    return result


def import_folder(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    template: str | os.PathLike | None = None,
    unit: str | None = None,
    subject_level: int | None = 0,
    sequence_level: int | None = 1,
    suffixes: Sequence[str] = MESH_SUFFIXES,
) -> PreparedDataset:
    """Import every mesh under ``src`` (recursive, natural sorted order).

    Args:
        src: the root folder.
        out_dir: the prepared dataset folder to write.
        skip_bad: skip bad files (recorded in meta.json) instead of stopping.
        workers: reader processes (default: all cores).
        template: the template mesh file (default: the first mesh in sorted order).
        unit: "m", "cm" or "mm" (default: guessed from the template's size; an
            ambiguous size asks for it).
        subject_level: folder level naming the subject (see the module docstring).
        sequence_level: folder level naming the sequence.
        suffixes: file suffixes to import.
    """
    src = Path(src)
    if not src.is_dir():
        raise DatasetError("mesh folder not found", path=src, fix="check the path")
    files = list_mesh_files(src, suffixes=suffixes)
    if not files:
        raise DatasetError(
            f"no mesh files ({', '.join(suffixes)}) under this folder",
            path=src,
            fix="point SRC at the folder that holds the meshes",
        )
    tmpl = load_template(template, files, skip_bad=skip_bad, name=src.name)
    unit = resolve_unit(unit, tmpl, where=template or files[0])
    tmpl.unit = unit
    rows = folder_rows(files, src, subject_level=subject_level, sequence_level=sequence_level)
    params = {
        "src": os.fspath(src.resolve()),
        "template": os.fspath(template) if template else "first mesh",
        "subject_level": subject_level,
        "sequence_level": sequence_level,
        "suffixes": list(suffixes),
    }
    return import_mesh_files(
        rows,
        out_dir,
        tmpl,
        source="folder",
        unit=unit,
        params=params,
        skip_bad=skip_bad,
        workers=workers,
    )
