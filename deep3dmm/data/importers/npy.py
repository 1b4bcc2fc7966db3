"""Neural3DMM preprocessed arrays (Bouritsas et al., "Neural 3D Morphable Models", ICCV 2019).

Layout::

    SRC/train.npy      (N_train, V, 3)
    SRC/test.npy       (N_test, V, 3)
    template mesh      SRC/template.{ply,obj,off}, SRC/template/template.obj, or
                       SRC/../template/template.obj (the Neural3DMM repository layout)

Rows are stored train first, then test; each row keeps its origin (``sequence`` is
``train`` or ``test``, ``frame`` the row in that file, ``source`` the file), and
meta.json records ``predefined_split`` so the ``predefined`` split protocol reproduces
the published train/test partition exactly.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deep3dmm.data.importers.reading import resolve_unit
from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter
from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.mesh.template import Template

__all__ = ["import_npy"]

logger = logging.getLogger(__name__)

PARTS = ("train", "test")
CHUNK = 512


def _find_template(src: Path) -> Path:
    candidates = [src / f"template{s}" for s in (".ply", ".obj", ".off")]
    candidates += [src / "template" / "template.obj", src.parent / "template" / "template.obj"]
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError(
        "no template mesh found beside train.npy/test.npy",
        path=src,
        fix="pass --template FILE (the mesh whose topology the arrays share)",
    )


def _open(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the array ({exc})", path=path) from exc
    if array.ndim != 3 or array.shape[-1] != 3:
        raise DatasetError(f"array has shape {array.shape}, expected (N, V, 3)", path=path)
    return array


def import_npy(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    template: str | os.PathLike | None = None,
    unit: str | None = None,
    subject: str = "all",
) -> PreparedDataset:
    """Import Neural3DMM ``train.npy`` / ``test.npy`` arrays.

    Args:
        src: the folder holding train.npy and test.npy.
        out_dir: the prepared dataset folder to write.
        skip_bad: skip rows with NaN/inf values (recorded in meta.json) instead of stopping.
        workers: must be None (arrays are read sequentially, memory-mapped, in chunks).
        template: the template mesh file (default: searched, see the module docstring).
        unit: "m", "cm" or "mm" (default: guessed from the template size).
        subject: subject name recorded for every row (the arrays carry none).
    """
    if workers is not None:  # memory-mapped chunked copies; no parsing to parallelise
        raise ConfigError(
            f"workers (--workers {workers}) does not apply to the npy importer: its arrays "
            "are copied memory-mapped, with nothing to parse in parallel",
            fix="drop --workers",
        )
    src = Path(src)
    if not src.is_dir():
        raise DatasetError("folder not found", path=src, fix="expected SRC/train.npy, test.npy")
    missing = [f"{p}.npy" for p in PARTS if not (src / f"{p}.npy").is_file()]
    if missing:
        raise DatasetError(
            f"missing {', '.join(missing)}",
            path=src,
            fix="the Neural3DMM layout holds train.npy and test.npy (N, V, 3)",
        )
    arrays = {p: _open(src / f"{p}.npy") for p in PARTS}
    template_path = Path(template) if template is not None else _find_template(src)
    tmpl = Template.load(template_path, name="template")
    tmpl.unit = unit = resolve_unit(unit, tmpl, where=template_path)
    for part, array in arrays.items():
        if array.shape[1] != tmpl.num_vertices:
            raise DatasetError(
                f"{part}.npy has {array.shape[1]} vertices per mesh, the template "
                f"{template_path.name} has {tmpl.num_vertices}",
                path=src / f"{part}.npy",
                fix="pass the matching --template",
            )
    params = {"src": os.fspath(src.resolve()), "template": os.fspath(template_path)}
    total = sum(len(a) for a in arrays.values())
    ranges = {}
    with (
        PreparedDatasetWriter(out_dir, tmpl, total, source="npy", unit=unit, params=params) as w,
        tqdm(total=total, unit="mesh", desc="import npy", disable=None) as bar,
    ):
        for part, array in arrays.items():
            begin = len(w.rows)
            for start in range(0, len(array), CHUNK):
                block = np.asarray(array[start : start + CHUNK], dtype=np.float32)  # (n, V, 3)
                finite = np.isfinite(block).all(axis=(1, 2))
                for bad in np.flatnonzero(~finite):
                    error = f"{part}.npy row {start + bad} holds NaN or infinite values"
                    if not skip_bad:
                        raise DatasetError(
                            error, path=src / f"{part}.npy", fix="repair it or pass --skip-bad"
                        )
                    logger.warning("skipped %s", error)
                    w.skip(f"{part}.npy[{start + bad}]", "NaN or infinite values")
                keep = np.flatnonzero(finite)
                rows = [IndexRow(subject, part, start + int(i), f"{part}.npy") for i in keep]
                if rows:
                    w.add(block[keep], rows)
                bar.update(len(block))
            ranges[part] = [[begin, len(w.rows)]]
        w.extra_meta["predefined_split"] = {"test": ranges["test"]}
    return PreparedDataset(out_dir)
