"""Resolve "a mesh file or a dataset index" into vertices a trained run can encode.

The analysis commands (``interpolate``, ``transfer``) accept each mesh either as a
path to a ``.ply`` / ``.obj`` / ``.off`` file registered to the run's template, or as a
row number of the run's prepared dataset. Both come back as :class:`MeshInput` with
raw coordinates in the dataset unit; the run's normalisation is applied later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep3dmm.errors import ConfigError, DatasetError, MeshFormatError
from deep3dmm.mesh import read_mesh

__all__ = ["MeshInput", "resolve_input", "dataset_row", "split_rows"]


@dataclass(frozen=True)
class MeshInput:
    """One mesh given to an analysis command.

    Attributes:
        vertices: ``(V, 3) float32`` coordinates in the dataset unit.
        label: short human-readable name (file name, or ``#row subject/sequence/frame``).
        row: the dataset row, or ``None`` for a mesh file.
        path: the mesh file, or ``None`` for a dataset row.
    """

    vertices: np.ndarray
    label: str
    row: int | None = None
    path: Path | None = None


def dataset_row(dataset, row: int) -> MeshInput:
    """The mesh at ``row`` of a prepared dataset.

    Raises:
        DatasetError: ``row`` is negative or not below the number of meshes.
    """
    count = len(dataset)
    if not 0 <= int(row) < count:
        raise DatasetError(
            f"mesh index {row} is out of range: the dataset holds {count} meshes",
            path=dataset.path,
            fix=f"pass an index from 0 to {count - 1}, or a mesh file",
        )
    row = int(row)
    entry = dataset.index[row]
    return MeshInput(
        vertices=np.array(dataset.vertices[row], dtype=np.float32),
        label=f"#{row} {entry.subject}/{entry.sequence}/{entry.frame}",
        row=row,
    )


def resolve_input(spec: str | int | os.PathLike, *, dataset) -> MeshInput:
    """A mesh file (registered to the dataset's template) or a dataset row index.

    A string of digits is a row index unless a file of that name exists.

    Args:
        spec: path of a mesh file, or a row number of ``dataset``.
        dataset: the run's :class:`~deep3dmm.data.PreparedDataset` (its template is the
            run's template, its unit the unit of mesh files).

    Raises:
        DatasetError: an index out of range.
        MeshFormatError: a path that is neither a readable mesh nor an index.
        TopologyMismatchError: a mesh whose vertices / faces differ from the template.
    """
    if isinstance(spec, (int, np.integer)):
        return dataset_row(dataset, int(spec))
    text = str(spec)
    path = Path(text)
    if text.lstrip("-").isdigit() and not path.is_file():
        return dataset_row(dataset, int(text))
    if not path.is_file():
        raise MeshFormatError(
            "no such mesh file, and not a dataset index",
            path=path,
            fix=f"pass a mesh file or a dataset index from 0 to {len(dataset) - 1}",
        )
    vertices, faces = read_mesh(path)
    dataset.template.check_registered((vertices, faces), path=path)
    return MeshInput(vertices=vertices.astype(np.float32), label=path.stem, path=path)


def split_rows(run, split: str, *, fix: str) -> np.ndarray:
    """Dataset rows of a run's split; a :class:`ConfigError` (with ``fix``) when it is empty."""
    rows = run.split[split]
    if len(rows) == 0:
        raise ConfigError(f"the {split} split of this run is empty", path=run.run_dir, fix=fix)
    return rows
