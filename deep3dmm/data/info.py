"""A summary of a prepared dataset: counts, subjects, sequences, unit, bounding box, splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.data.splits import make_split
from deep3dmm.errors import Deep3DMMError
from deep3dmm.mesh.template import UNITS

__all__ = ["DatasetInfo", "dataset_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """What ``deep3dmm data info`` prints.

    Attributes:
        path: the dataset folder.
        source: the importer or generator.
        unit: length unit of the coordinates.
        meshes: number of meshes N.
        vertices: vertices per mesh V.
        faces: template faces F.
        subjects: sorted subject names.
        sequences: sorted sequence names.
        bbox_min: ``(3,)`` smallest coordinates over all meshes (dataset unit).
        bbox_max: ``(3,)`` largest coordinates over all meshes.
        skipped: files left out at import.
        content_hash: hash of the vertex data.
        splits: split sizes per protocol (``{"interpolation": {"train": ..}, ...}``).
    """

    path: str
    source: str
    unit: str
    meshes: int
    vertices: int
    faces: int
    subjects: list[str]
    sequences: list[str]
    bbox_min: np.ndarray
    bbox_max: np.ndarray
    skipped: int
    content_hash: str
    splits: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Human-readable lines."""
        extent_mm = (self.bbox_max - self.bbox_min) * UNITS[self.unit] * 1000.0

        def names(values: list[str]) -> str:
            shown = ", ".join(values[:12])
            return f"{len(values)} ({shown}{', ...' if len(values) > 12 else ''})"

        lines = [
            f"source: {self.source}   unit: {self.unit}   content hash: {self.content_hash}",
            f"meshes: {self.meshes}   vertices: {self.vertices}   faces: {self.faces}",
            f"subjects: {names(self.subjects)}",
            f"sequences: {names(self.sequences)}",
            "bounding box: min "
            + " ".join(f"{x:.4g}" for x in self.bbox_min)
            + "  max "
            + " ".join(f"{x:.4g}" for x in self.bbox_max)
            + f" {self.unit}  (extent "
            + " x ".join(f"{x:.1f}" for x in extent_mm)
            + " mm)",
            f"skipped at import: {self.skipped}",
        ]
        for protocol, sizes in self.splits.items():
            text = (
                sizes if isinstance(sizes, str) else "  ".join(f"{k} {v}" for k, v in sizes.items())
            )
            lines.append(f"split {protocol}: {text}")
        return lines


def dataset_info(
    dataset: PreparedDataset, *, holdout: str | None = None, chunk: int = 1024
) -> DatasetInfo:
    """Summarise a prepared dataset (the bounding box is computed chunk by chunk).

    Args:
        dataset: the opened dataset.
        holdout: a sequence name; adds the ``extrapolation`` split sizes for it.
        chunk: meshes per chunk when scanning the vertices.
    """
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for start in range(0, len(dataset), chunk):
        block = np.asarray(dataset.vertices[start : start + chunk])
        lo = np.minimum(lo, block.min(axis=(0, 1)))
        hi = np.maximum(hi, block.max(axis=(0, 1)))
    protocols = ["interpolation", "identity", "random"]
    if holdout is not None:
        protocols.append("extrapolation")
    if dataset.meta.get("predefined_split"):
        protocols.append("predefined")
    splits = {}
    for protocol in protocols:
        try:
            split = make_split(
                dataset, protocol, holdout=holdout if protocol != "identity" else None
            )
            splits[protocol] = split.sizes()
        except Deep3DMMError as exc:
            splits[protocol] = f"n/a ({exc.message})"
    return DatasetInfo(
        path=str(dataset.path),
        source=str(dataset.meta.get("source", "?")),
        unit=dataset.unit,
        meshes=len(dataset),
        vertices=dataset.template.num_vertices,
        faces=dataset.template.num_faces,
        subjects=sorted(set(dataset.subjects.tolist())),
        sequences=sorted(set(dataset.sequences.tolist())),
        bbox_min=lo,
        bbox_max=hi,
        skipped=len(dataset.meta.get("skipped", [])),
        content_hash=str(dataset.meta.get("content_hash", "")),
        splits=splits,
    )
