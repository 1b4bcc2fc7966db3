"""Similarity alignment (landmarks, principal axes + ICP) and non-rigid registration."""

from __future__ import annotations

import numpy as np
import pytest

from deep3dmm.mesh import shapes
from deep3dmm.registration import (
    Scan,
    Similarity,
    TemplateLandmarks,
    align_to_scan,
    crop,
    procrustes_similarity,
    register_scan,
    remesh,
    scan_report,
)
from deep3dmm.registration.synthetic import random_rotation


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


def test_procrustes_recovers_a_similarity():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((10, 3))
    truth = Similarity(1.7, random_rotation(rng), np.array([0.3, -2.0, 1.0]))
    found = procrustes_similarity(points, truth.apply(points))
    assert found.scale == pytest.approx(1.7)
    np.testing.assert_allclose(found.rotation, truth.rotation, atol=1e-9)
    np.testing.assert_allclose(found.apply(points), truth.apply(points), atol=1e-9)
    np.testing.assert_allclose(found.inverse().apply(truth.apply(points)), points, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_principal_axes_and_icp_resolve_sign_ambiguity(target, seed):
    """Any rotation of an asymmetric shape is undone (every sign pattern gets tried)."""
    vertices, faces = target
    rng = np.random.default_rng(seed)
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-0.05, 0.05, 3))
    found, _ = align_to_scan(vertices, faces, motion.apply(vertices))
    assert _angle_deg(found.rotation, motion.rotation) < 2.0
    np.testing.assert_allclose(found.apply(vertices), motion.apply(vertices), atol=2e-3)


def test_remesh_and_crop_change_the_topology(target):
    vertices, faces = target
    new_v, new_f = remesh(vertices, faces, ratio=0.8)
    assert len(new_v) != len(vertices) and new_f.max() < len(new_v)
    cut = crop(Scan(new_v, new_f), np.array([1.0, 0.0, 0.0]), missing=0.4)
    assert 0.5 < len(cut.points) / len(new_v) < 0.65
    assert cut.points[:, 0].max() < new_v[:, 0].max()


def test_nonrigid_registration_recovers_a_deformed_remeshed_scan(sphere, target):
    """Template sphere -> moved, remeshed, deformed copy: vertices land near the truth."""
    template_v, faces = sphere
    truth_v, _ = target
    rng = np.random.default_rng(3)
    motion = Similarity(1.0, random_rotation(rng, max_degrees=60), np.array([0.02, 0.0, -0.01]))
    fine_v, fine_f = shapes.icosphere(3, radius=0.1)
    from tests.registration.conftest import bumpy

    scan = Scan(motion.apply(bumpy(fine_v / 0.1) * 0.1), fine_f)
    ids = np.arange(0, 162, 9)
    landmarks = TemplateLandmarks(vertex_ids=ids)
    result = register_scan(
        template_v,
        faces,
        scan,
        template_landmarks=landmarks,
        scan_landmarks=motion.apply(truth_v[ids]),
    )
    error = np.linalg.norm(result.vertices - motion.apply(truth_v), axis=1)
    start = np.linalg.norm(template_v - truth_v, axis=1)
    assert error.mean() < 0.15 * start.mean()
    report, residual = scan_report(result.vertices, faces, scan, to_mm=1000.0)
    assert report["scan_to_result"]["mean_mm"] < 1.0 and residual.shape == (162,)
    assert 0.0 <= report["scan_to_result"]["within_1mm"] <= 1.0
    assert result.iterations > 0


@pytest.mark.parametrize("degrees", [180.0, 120.0])
def test_landmarks_decide_the_rotation_of_a_near_symmetric_shape(sphere, degrees):
    """An ellipsoid with a faint bump, turned about its short axis: the landmarks say how.

    Without landmarks the turned and the unturned shape are near-ties for ICP (the
    identity would win the tie); with landmarks the Procrustes rotation must stand.
    """
    vertices, faces = sphere
    x = vertices / 0.1
    bump = 1.0 + 0.01 * np.exp(-((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.3) ** 2) / 0.1)
    shape = x * np.array([1.5, 1.0, 0.6]) * bump[:, None] * 0.1
    angle = np.deg2rad(degrees)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]]
    )
    motion = Similarity(1.0, rotation, np.array([0.01, -0.02, 0.005]))
    truth = motion.apply(shape)
    noise = np.random.default_rng(0).normal(0.0, 1e-3, truth.shape)  # 1 mm scanner noise
    ids = np.arange(0, len(shape), 7)
    found, _ = align_to_scan(
        shape, faces, truth + noise, template_landmarks=shape[ids], scan_landmarks=truth[ids]
    )
    assert _angle_deg(found.rotation, motion.rotation) < 2.0
    np.testing.assert_allclose(found.apply(shape), truth, atol=3e-3)


# seed 1 turns the cut blob so that a 180-degree turn of it ties with the truth (ICP
# costs within 1 %): no shape-blind method can decide that one; the old four-candidate
# alignment failed 7 of these 7.
@pytest.mark.parametrize("seed", [0, 2, 3, 4, 5, 6, 7])
def test_alignment_of_a_cropped_scan_whose_principal_axes_swap(seed):
    """40 % cut off the long axis: the scan's first two principal axes trade places.

    Four sign patterns of the principal frame cannot map the template's long axis to
    the scan's second one; every signed permutation (24 proper frames) can.
    """
    from tests.registration.conftest import bumpy

    template = bumpy(shapes.icosphere(3, radius=1.0)[0]) * 0.1  # asymmetric
    rng = np.random.default_rng(seed)
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-0.05, 0.05, 3))
    kept = template[template[:, 0] <= np.quantile(template[:, 0], 0.6)]
    first = [np.linalg.eigh(np.cov(p.T))[1][:, -1] for p in (template, kept)]
    assert abs(first[0] @ first[1]) < 0.2  # the long axis is no longer the first
    scan = motion.apply(kept)
    found, _ = align_to_scan(template, None, scan, scale=1.0)
    # A wrong frame (the long axis on the scan's second axis) is >= 90 degrees off; the
    # right one ends a few degrees off, as nearest-vertex ICP on this coarse cut blob
    # (642 vertices, ~15 mm apart) settles 2.7-9.5 degrees from the truth (seeds 2 and 4:
    # 6.6 and 9.5). The former bound of 5 held only in metres, where the old absolute ICP
    # tolerance (1e-5 m^2) stopped ICP after a few iterations; the same blob in mm ended
    # 6.6 and 9.5 degrees off with the old code too.
    assert _angle_deg(found.rotation, motion.rotation) < 15.0
