"""Tiny procedural prepared datasets and run configurations for the training tests."""

from __future__ import annotations

import numpy as np
import pytest

from deep3dmm.data import IndexRow, write_prepared_dataset
from deep3dmm.mesh import Template, shapes


def deformed_spheres(count: int, *, subdivisions: int = 2, seed: int = 0, radius: float = 0.1):
    """``count`` smooth deformations of an icosphere (axis scalings + a low-frequency bump)."""
    vertices, faces = shapes.icosphere(subdivisions, radius=radius)
    rng = np.random.default_rng(seed)
    scales = 1.0 + 0.2 * rng.standard_normal((count, 1, 3))
    bump = 0.1 * rng.standard_normal((count, 1, 1)) * vertices[None, :, :1] / radius
    meshes = (vertices[None] * scales * (1.0 + bump)).astype(np.float32)
    return Template(vertices, faces, name="sphere", unit="m"), meshes


def write_spheres(path, count: int = 24, *, subdivisions: int = 2, seed: int = 0):
    template, meshes = deformed_spheres(count, subdivisions=subdivisions, seed=seed)
    rows = [IndexRow(f"s{i % 3}", f"seq{(i // 3) % 2}", i, f"synthetic/{i}") for i in range(count)]
    return write_prepared_dataset(path, template, meshes, rows, source="spheres", unit="m")


@pytest.fixture(autouse=True)
def _hierarchy_cache(isolated_cache):
    """Keep hierarchy caches out of the user's home."""


@pytest.fixture(scope="session")
def spheres(tmp_path_factory):
    """24 deformed icospheres (162 vertices), subjects s0-s2, sequences seq0-seq1."""
    return write_spheres(tmp_path_factory.mktemp("data") / "spheres")


@pytest.fixture(scope="session")
def spheres8(tmp_path_factory):
    """10 meshes: a random split leaves exactly 8 train meshes (1 val, 1 test)."""
    return write_spheres(tmp_path_factory.mktemp("data") / "spheres10", count=10, seed=1)


@pytest.fixture(name="write_spheres", scope="session")
def write_spheres_fixture():
    return write_spheres
