"""A tiny trained run on procedural meshes: subjects x sequences x frames of deformed spheres."""

from __future__ import annotations

import numpy as np
import pytest

from deep3dmm.data import IndexRow, write_prepared_dataset
from deep3dmm.mesh import Template, shapes
from deep3dmm.train import load_run, train


@pytest.fixture(autouse=True)
def _hierarchy_cache(isolated_cache):
    """Keep hierarchy caches out of the user's home."""


@pytest.fixture(scope="session")
def blobs(tmp_path_factory):
    """3 subjects x 2 sequences x 3 frames of a deformed icosphere (162 vertices, metres).

    Subject = axis scaling, sequence = a bump along x or y, frame = its amplitude, so every
    (subject, sequence, frame) exists and deformation transfer has a ground truth.
    """
    vertices, faces = shapes.icosphere(2, radius=0.1)
    rows, meshes = [], []
    for s, scale in enumerate(([1.0, 1.0, 1.0], [1.2, 0.9, 1.0], [0.9, 1.1, 1.2])):
        for q, axis in enumerate((0, 1)):
            for f in range(3):
                bump = 1.0 + 0.15 * f * np.clip(vertices[:, axis] / 0.1, 0, None)[:, None]
                meshes.append(vertices * np.array(scale) * bump)
                rows.append(IndexRow(f"s{s}", f"seq{q}", f, f"synthetic/{s}/{q}/{f}"))
    template = Template(vertices, faces, name="sphere", unit="m")
    return write_prepared_dataset(
        tmp_path_factory.mktemp("data") / "blobs",
        template,
        np.stack(meshes).astype(np.float32),
        rows,
        source="blobs",
        unit="m",
    )


@pytest.fixture(scope="session")
def run_dir(blobs, tiny_config, tmp_path_factory):
    """A spiral + attention run trained for 2 epochs (seconds)."""
    config = tiny_config(blobs.path, pool="attention")  # K is unused by spiral convolutions
    out = tmp_path_factory.mktemp("runs") / "att"
    train(config, out, quiet=True)
    return out


@pytest.fixture(scope="session")
def run(run_dir):
    return load_run(run_dir)
