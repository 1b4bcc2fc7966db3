"""Small prepared datasets built from procedural meshes."""

from __future__ import annotations

import numpy as np
import pytest

from deep3dmm.data import IndexRow, write_prepared_dataset
from deep3dmm.mesh import Template, shapes


def make_prepared(path, *, subjects=3, sequences=4, frames=25, seed=0):
    """Write a dataset of subjects x sequences x frames noisy icospheres (162 vertices)."""
    vertices, faces = shapes.icosphere(2)
    rng = np.random.default_rng(seed)
    n = subjects * sequences * frames
    data = vertices[None] * rng.uniform(0.5, 1.5, (n, 1, 3)) + rng.normal(0, 0.01, (n, 162, 3))
    rows = [
        IndexRow(f"s{s}", f"seq{q}", f, f"s{s}/seq{q}/{f:03d}.ply")
        for s in range(subjects)
        for q in range(sequences)
        for f in range(frames)
    ]
    return write_prepared_dataset(
        path, Template(vertices, faces), data.astype(np.float32), rows, source="test", unit="m"
    )


@pytest.fixture
def prepared(tmp_path):
    """300 meshes: 3 subjects x 4 sequences x 25 frames."""
    return make_prepared(tmp_path / "prepared")
