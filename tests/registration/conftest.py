"""Small procedural scans for the registration tests."""

from __future__ import annotations

import numpy as np
import pytest

from deep3dmm.mesh import shapes


def bumpy(vertices: np.ndarray) -> np.ndarray:
    """An asymmetric smooth deformation of a unit-ish sphere (distinct principal axes)."""
    x = vertices
    scaled = x * np.array([1.5, 1.0, 0.6])
    bump = 1.0 + 0.25 * np.exp(-((x[:, 0] - 0.1) ** 2 + (x[:, 1] - 0.1) ** 2) / 0.05)
    return scaled * bump[:, None]


@pytest.fixture(scope="session")
def sphere():
    """The template: an icosphere (162 vertices, radius 0.1 m)."""
    return shapes.icosphere(2, radius=0.1)


@pytest.fixture(scope="session")
def target(sphere):
    """The template's own topology, deformed (the ground truth of registrations)."""
    vertices, faces = sphere
    return bumpy(vertices / 0.1) * 0.1, faces
