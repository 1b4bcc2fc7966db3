"""A rendered sample grid of a prepared dataset: subjects x sequences at their peak frame."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deep3dmm.data.prepared import PreparedDataset

__all__ = ["THREE_QUARTER", "peak_rows", "render_preview"]

# From the front (+z), a little from the subject's left (+x) and above (+y); y up.
THREE_QUARTER = ((0.45, 0.2, 1.0), (0.0, 1.0, 0.0))


def peak_rows(dataset: PreparedDataset, *, subjects: int, sequences: int) -> list[int]:
    """Rows of the peak frames of the first ``subjects`` x ``sequences`` sequences.

    The peak of a sequence is its frame farthest (mean vertex distance) from its first
    frame. Subject-major order; sequences in the generator's order when meta.json lists
    it, evenly spread over all sequences when there are more than ``sequences``.
    """
    names = sorted(set(dataset.sequences.tolist()), key=_order(dataset))
    if sequences < len(names):  # spread the columns over all sequences
        names = [names[i] for i in np.linspace(0, len(names) - 1, sequences).round().astype(int)]
    rows = []
    for subject in sorted(set(dataset.subjects.tolist()))[:subjects]:
        for sequence in names:
            match = np.flatnonzero((dataset.subjects == subject) & (dataset.sequences == sequence))
            if len(match) == 0:
                continue
            match = match[np.argsort(dataset.frames[match], kind="stable")]
            frames = np.asarray(dataset.vertices[match])  # (T, V, 3)
            distance = np.linalg.norm(frames - frames[:1], axis=-1).mean(axis=-1)  # (T,)
            rows.append(int(match[int(np.argmax(distance))]))
    return rows


def _order(dataset: PreparedDataset):
    """Sort key keeping the generator's sequence order when meta.json records it."""
    listed = dataset.meta.get("params", {}).get("sequences")
    if isinstance(listed, list):
        return lambda name: (listed.index(name) if name in listed else len(listed), name)
    return lambda name: (0, name)


def render_preview(
    dataset: PreparedDataset | str | os.PathLike,
    path: str | os.PathLike,
    *,
    subjects: int = 3,
    sequences: int = 6,
    panel_size: int = 200,
    zoom: float = 1.0,
    camera: str | tuple = THREE_QUARTER,
) -> Path:
    """Render a subjects x sequences grid of peak frames into a PNG (datasets y up, facing +z).

    Args:
        dataset: a prepared dataset or its folder.
        path: output ``.png``.
        subjects: rows of the grid (first subjects, sorted).
        sequences: columns (spread over the dataset's sequences).
        panel_size: pixels per panel.
        zoom: camera zoom (> 1 closer).
        camera: a :data:`deep3dmm.viz.render.CAMERAS` name or (direction, view up); the
            default looks from the front, a little from the subject's left and above.
    """
    from deep3dmm.viz.render import render_meshes

    if not isinstance(dataset, PreparedDataset):
        dataset = PreparedDataset(dataset)
    rows = peak_rows(dataset, subjects=subjects, sequences=sequences)
    faces = dataset.template.faces
    meshes = [(np.asarray(dataset.vertices[r]), faces) for r in rows]
    titles = [f"{dataset.index[r].subject} {dataset.index[r].sequence}" for r in rows]
    cols = min(sequences, len(set(dataset.sequences.tolist())))
    grid = (int(np.ceil(len(rows) / cols)), cols)
    return render_meshes(
        meshes,
        path,
        grid=grid,
        titles=titles,
        camera=camera,
        panel_size=panel_size,
        zoom=zoom,
    )
