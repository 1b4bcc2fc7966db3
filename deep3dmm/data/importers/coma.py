"""COMA (Ranjan et al., "Generating 3D faces using Convolutional Mesh Autoencoders", ECCV 2018).

Layout of the released data (12 subjects, 12 expressions, 5023-vertex FLAME topology,
metres)::

    SRC/<subject>/<expression>/<expression>.<frame:06d>.ply
    e.g. SRC/FaceTalk_170725_00137_TA/bareteeth/bareteeth.000001.ply

Rows are stored sorted by subject, expression, then frame (numeric); the COMA
``interpolation`` split (``index % 100 < 10`` is test) is taken over this order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from deep3dmm.data.importers.reading import (
    import_mesh_files,
    load_template,
    natural_key,
    relative_source,
    row_order,
    trailing_number,
)
from deep3dmm.data.prepared import IndexRow, PreparedDataset
from deep3dmm.errors import DatasetError

__all__ = ["import_coma"]

LAYOUT = "SRC/<subject>/<expression>/<expression>.<frame>.ply"


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def coma_files(
    src: Path,
    *,
    subjects: Sequence[str] | None = None,
    expressions: Sequence[str] | None = None,
) -> list[tuple[Path, IndexRow]]:
    """The COMA files under ``src`` with their index rows, sorted."""
    if not src.is_dir():
        raise DatasetError("COMA folder not found", path=src, fix=f"expected {LAYOUT}")
    files = []
    for subject_dir in _subdirs(src):
        if subjects and subject_dir.name not in subjects:
            continue
        for expression_dir in _subdirs(subject_dir):
            if expressions and expression_dir.name not in expressions:
                continue
            plys = [p for p in expression_dir.iterdir() if p.suffix.lower() == ".ply"]
            for path in sorted(plys, key=lambda p: natural_key(p.name)):
                frame = trailing_number(path.stem)
                if frame is None:
                    raise DatasetError(
                        "file name has no frame number",
                        path=path,
                        fix=f"COMA files are named <expression>.<frame>.ply ({LAYOUT})",
                    )
                row = IndexRow(subject_dir.name, expression_dir.name, frame, "")
                files.append((path, row))
    if not files:
        loose = sorted(p.name for p in src.rglob("*.ply"))[:3]
        hint = (
            f"found .ply files ({', '.join(loose)}) but not in {LAYOUT}; for any other tree "
            "use `deep3dmm data import folder`"
            if loose
            else f"expected {LAYOUT}"
        )
        if subjects or expressions:
            hint = "no file matches the --subjects/--expressions filters; " + hint
        raise DatasetError("no COMA meshes found", path=src, fix=hint)
    files.sort(key=row_order)
    return [
        (path, IndexRow(r.subject, r.sequence, r.frame, relative_source(path, src)))
        for path, r in files
    ]


def import_coma(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    template: str | os.PathLike | None = None,
    subjects: Sequence[str] | None = None,
    expressions: Sequence[str] | None = None,
) -> PreparedDataset:
    """Import the COMA dataset (unit: metres).

    Args:
        src: the COMA root folder (``SRC/<subject>/<expression>/<expression>.<frame>.ply``).
        out_dir: the prepared dataset folder to write.
        skip_bad: skip bad files (recorded in meta.json) instead of stopping.
        workers: reader processes (default: all cores).
        template: the template mesh file (default: the first mesh in sorted order).
        subjects: import only these subjects.
        expressions: import only these expressions.
    """
    src = Path(src)
    files = coma_files(src, subjects=subjects, expressions=expressions)
    tmpl = load_template(template, [p for p, _ in files], skip_bad=skip_bad, unit="m", name="coma")
    params = {
        "src": os.fspath(src.resolve()),
        "template": os.fspath(template) if template else "first mesh",
        "subjects": list(subjects or []),
        "expressions": list(expressions or []),
    }
    return import_mesh_files(
        files,
        out_dir,
        tmpl,
        source="coma",
        unit="m",
        params=params,
        skip_bad=skip_bad,
        workers=workers,
    )
