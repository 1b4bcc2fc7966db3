"""Deformation transfer in local frames: exact on the source, rotation-equivariant, local."""

import numpy as np
import pytest
import trimesh

from deep3dmm.data.generate.transfer import DeformationTransfer, closest_rotations
from deep3dmm.errors import ConfigError


def _sphere():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _bump(vertices, height=0.2):
    """A smooth bump on the +z cap (zero below z = 0.3), and the fixed vertices."""
    weight = np.clip((vertices[:, 2] - 0.3) / 0.7, 0.0, 1.0) ** 2
    displacement = height * weight[:, None] * vertices
    return displacement[None], weight == 0.0


def test_transfer_onto_the_source_itself_is_exact():
    vertices, faces = _sphere()
    displacement, fixed = _bump(vertices)
    out = DeformationTransfer(vertices, vertices, faces, fixed=fixed)(displacement)
    np.testing.assert_allclose(out, displacement, atol=1e-10)


def test_transfer_onto_a_rotated_target_rotates_the_displacement():
    vertices, faces = _sphere()
    displacement, fixed = _bump(vertices)
    rotation = closest_rotations(np.array([[1.0, 0.3, 0.0], [-0.2, 1.0, 0.5], [0.1, -0.4, 1.0]]))
    out = DeformationTransfer(vertices, vertices @ rotation.T, faces, fixed=fixed)(displacement)
    np.testing.assert_allclose(out, displacement @ rotation.T, atol=1e-9)


def test_transfer_depends_on_the_target_shape():
    """On a target stretched 1.5x along x the bump stretches with it (not a copied offset)."""
    vertices, faces = _sphere()
    displacement, fixed = _bump(vertices)
    target = vertices * np.array([1.5, 1.0, 1.0])
    out = DeformationTransfer(vertices, target, faces, fixed=fixed)(displacement)[0]
    assert np.abs(out - displacement[0]).max() > 0.02  # differs from the naive offset
    moving = ~fixed
    ratio = np.abs(out[moving, 0]).sum() / np.abs(displacement[0][moving, 0]).sum()
    assert 1.2 < ratio < 1.8  # x components follow the 1.5x stretch
    np.testing.assert_array_equal(out[fixed], 0.0)


def test_needs_a_fixed_vertex():
    vertices, faces = _sphere()
    with pytest.raises(ConfigError, match="fixed"):
        DeformationTransfer(vertices, vertices, faces, fixed=np.zeros(len(vertices), bool))
