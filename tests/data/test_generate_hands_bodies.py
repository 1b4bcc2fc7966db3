"""The anny hands and bodies generators (slow: first use builds anny's caches, 1-2 min)."""

import numpy as np
import pytest

from deep3dmm.data import make_split
from deep3dmm.data.generate import (
    HAND_POSES,
    bundled_template,
    inside_vertices,
    make_bodies,
    make_hands,
    winding_numbers,
)

pytest.importorskip("anny")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    root = tmp_path_factory.mktemp("hands")
    return root, make_hands(root / "a", subjects=2, sequences=6, frames=3, seed=3)


@pytest.fixture(scope="module")
def bodies(tmp_path_factory):
    root = tmp_path_factory.mktemp("bodies")
    return make_bodies(root / "a", subjects=1, sequences=3, frames=5, seed=3)


def test_hands_layout_and_determinism(hands):
    root, data = hands
    assert data.vertices.shape == (2 * 6 * 3, 1609, 3) and data.unit == "m"
    assert data.meta["source"] == "anny-hands"
    assert sorted(set(data.sequences)) == sorted(HAND_POSES)
    again = make_hands(root / "b", subjects=2, sequences=6, frames=3, seed=3)
    np.testing.assert_array_equal(np.asarray(again.vertices), np.asarray(data.vertices))
    template = bundled_template("hands")
    np.testing.assert_array_equal(data.template.faces, template.faces)
    np.testing.assert_allclose(data.template.vertices, template.vertices, atol=1e-6)


def test_hand_sequences_rest_pose_ends_and_wrist_fixed(hands):
    _, data = hands
    v = np.asarray(data.vertices).reshape(2, 6, 3, 1609, 3)
    np.testing.assert_allclose(v[:, :, 0], v[:, :, -1], atol=1e-6)
    np.testing.assert_allclose(v[:, :, 0], v[:, :1, 0].repeat(6, axis=1), atol=1e-6)
    moved = np.linalg.norm(v[:, :, 1] - v[:, :, 0], axis=-1)  # (2, 6, V) mid-sequence
    assert np.all(moved.max(axis=-1) > 0.01)  # finger tips travel centimetres
    assert np.median(moved.max(axis=-1)) > 0.05  # (each finger at its own phase)
    y = data.template.vertices[:, 1]
    wrist = y < y.min() + 0.01  # the forearm stump below the wrist joint
    assert wrist.sum() > 10 and moved[..., wrist].max() < 1e-4  # no global motion (< 0.1 mm)


def test_hand_peak_poses_do_not_interpenetrate(hands):
    """At each peak, at most 3% of the vertices lie inside the hand (LBS creases at
    flexed joints); fingers pushed through the palm would put 10-40% inside."""
    _, data = hands
    faces = data.template.faces
    rest = inside_vertices(np.asarray(data.vertices[0]), faces).sum()
    assert rest <= 5
    for row in np.flatnonzero(data.frames == 1)[:6]:
        count = inside_vertices(np.asarray(data.vertices[row]), faces).sum()
        assert count <= 0.03 * 1609, (data.index[row].sequence, count)


def test_bodies_layout_floor_and_rest_ends(bodies):
    data = bodies
    assert data.vertices.shape == (15, 13348, 3) and data.meta["source"] == "anny-bodies"
    v = np.asarray(data.vertices).reshape(3, 5, 13348, 3)
    np.testing.assert_allclose(v[:, 0], v[:, -1], atol=1e-6)  # rest -> motion -> rest
    np.testing.assert_allclose(v[:, 0], v[:1, 0].repeat(3, axis=0), atol=1e-6)
    np.testing.assert_allclose(v[..., 1].min(axis=-1), 0.0, atol=1e-6)  # feet on the floor
    height = np.ptp(v[0, 0, :, 1])
    assert 1.4 < height < 2.1  # an adult, in metres
    squat = np.ptp(v[1, 2, :, 1])
    assert squat < 0.85 * height  # the squat lowers the body
    template = bundled_template("bodies")
    np.testing.assert_allclose(data.template.vertices, template.vertices, atol=1e-6)
    np.testing.assert_array_equal(data.template.faces, template.faces)
    split = make_split(data, "extrapolation", holdout="squat")
    assert set(data.sequences[split.test]) == {"squat"} and len(split.train) == 10 - len(split.val)


def test_body_peak_poses_do_not_interpenetrate(bodies):
    """Sampled vertices inside the body at the squat and twist peaks stay at the rest
    level (creases at the armpits and crotch); a limb through the torso adds hundreds."""
    data = bodies
    faces = data.template.faces
    sample = slice(None, None, 32)
    rest = np.asarray(data.vertices[0])
    baseline = (winding_numbers(rest[sample], rest, faces) > 0.75).sum()
    for row in (7, 12):  # squat peak, twist peak
        v = np.asarray(data.vertices[row])
        count = (winding_numbers(v[sample], v, faces) > 0.75).sum()
        assert count <= baseline + 15, (data.index[row], count, baseline)
