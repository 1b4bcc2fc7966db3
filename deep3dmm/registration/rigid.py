r"""Similarity alignment of a template to a scan: landmarks, or principal axes + ICP.

A similarity maps template coordinates to scan coordinates,

.. math:: y = s R x + t, \qquad R \in SO(3),\ s > 0.

With landmarks it is the least-squares (Umeyama / Procrustes) solution,
``trimesh.registration.procrustes`` without reflection. Without landmarks the
centroids and principal axes of both point sets give candidate rotations (the
eigenvectors' signs and, for a cropped scan, their order are ambiguous: the 24 signed
permutations of the axes with determinant +1) and the identity rotation, each
refined by rigid ICP from the scan onto the template vertices (scale fixed by the
initialisation: ICP with a free scale shrinks an open surface), and the candidate with
the lowest ICP cost wins. The search is coarse to fine: all 25 candidates run a short
ICP on a few hundred scan points, the best few (and every one within a margin of the
best) run the full ICP from their initial pose, so they end exactly where the exhaustive
search would put them. One ``cKDTree`` of the template serves every candidate and every
iteration, all candidates move together per iteration (one batched query, a closed-form
Kabsch step each; the semantics of ``trimesh.registration.icp``, which rebuilds its
tree per call, with a stopping tolerance relative to the template's size instead of its
absolute one, so meshes in mm and in metres align alike). ICP runs scan -> template
so that a partial scan, whose every point has a counterpart on the template, is
aligned without being pulled towards the missing parts. With landmarks, their
Procrustes solution is the only candidate (ICP refines it): landmark-blind candidates
(principal axes, the identity) do not compete with it.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from deep3dmm.errors import ConfigError

__all__ = [
    "Similarity",
    "procrustes_similarity",
    "principal_axes_candidates",
    "alignment_candidates",
    "align_to_scan",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Similarity:
    """``y = scale * rotation @ x + translation``.

    Attributes:
        scale: ``s > 0``.
        rotation: ``(3, 3)`` proper rotation.
        translation: ``(3,)``.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def identity(cls) -> Similarity:
        """The identity map."""
        return cls(1.0, np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> Similarity:
        """From a ``(4, 4)`` homogeneous matrix whose linear part is ``s R``."""
        linear = np.asarray(matrix, dtype=np.float64)[:3, :3]
        scale = float(np.cbrt(np.linalg.det(linear)))
        return cls(scale, linear / scale, np.asarray(matrix, dtype=np.float64)[:3, 3].copy())

    @property
    def matrix(self) -> np.ndarray:
        """The ``(4, 4)`` homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation
        out[:3, 3] = self.translation
        return out

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` points."""
        return self.scale * np.asarray(points) @ self.rotation.T + self.translation

    def inverse(self) -> Similarity:
        """The inverse map."""
        rotation = self.rotation.T
        return Similarity(1.0 / self.scale, rotation, -(rotation @ self.translation) / self.scale)

    def rigid_inverse(self) -> Similarity:
        """Undo rotation and translation but keep the size: ``x = R^T (y - t)``.

        Brings a registered scan back into the template's frame without rescaling it
        (the scale is part of the subject's shape).
        """
        rotation = self.rotation.T
        return Similarity(1.0, rotation, -(rotation @ self.translation))

    def to_json(self) -> dict:
        """Plain lists for a JSON report."""
        return {
            "scale": float(self.scale),
            "rotation": np.asarray(self.rotation).tolist(),
            "translation": np.asarray(self.translation).tolist(),
        }


def procrustes_similarity(
    source: np.ndarray, target: np.ndarray, *, scale: bool = True
) -> Similarity:
    """Least-squares similarity (or rigid motion) mapping ``source (K, 3)`` onto ``target``.

    Raises:
        ConfigError: fewer than 3 pairs, or degenerate (collinear) points.
    """
    import trimesh

    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if len(source) < 3 or len(source) != len(target):
        raise ConfigError(
            f"a similarity needs >= 3 landmark pairs, got {len(source)} and {len(target)}"
        )
    if np.linalg.matrix_rank(source - source.mean(0), tol=1e-9 * np.abs(source).max()) < 2:
        raise ConfigError("the landmarks are collinear: no rotation is defined")
    matrix, _, _ = trimesh.registration.procrustes(
        source, target, reflection=False, translation=True, scale=scale, return_cost=True
    )
    return Similarity.from_matrix(matrix)


def _axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid ``(3,)``, principal axes as columns ``(3, 3)`` (descending), variances ``(3,)``."""
    center = points.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov((points - center).T))
    order = np.argsort(values)[::-1]
    return center, vectors[:, order], values[order]


def _proper_frames() -> np.ndarray:
    """``(24, 3, 3)``: the signed permutation matrices with determinant +1."""
    perms = np.array(list(itertools.permutations(range(3))))  # (6, 3)
    signs = np.array(list(itertools.product((1, -1), repeat=3)))  # (8, 3)
    frames = (signs[None, :, :, None] * np.eye(3)[perms][:, None]).reshape(-1, 3, 3)
    return frames[np.linalg.det(frames) > 0]


def principal_axes_candidates(
    source: np.ndarray, target: np.ndarray, *, scale: float | None = None
) -> list[Similarity]:
    """The 24 proper similarities that map ``source``'s principal frame onto ``target``'s.

    Eigenvectors are defined up to sign, and their order up to close variances: a scan
    with a part missing (a face cropped on one side) can trade its first and second
    axes. Every signed permutation of the axes with determinant +1 (24 of the 48) is a
    candidate. Scale: ``scale``, else the ratio of the RMS radii.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    c_s, a_s, v_s = _axes(source)
    c_t, a_t, v_t = _axes(target)
    if scale is None:
        scale = float(np.sqrt(v_t.sum() / max(v_s.sum(), 1e-30)))
    # rotation = A_t P A_s^T; a left-handed pair of frames flips the sign of P
    handed = np.sign(np.linalg.det(a_t) * np.linalg.det(a_s))
    out = []
    for frame in _proper_frames():
        rotation = a_t @ (handed * frame) @ a_s.T
        out.append(Similarity(scale, rotation, c_t - scale * rotation @ c_s))
    return out


# ICP stops once the cost falls by less than this x the template's mean squared radius:
# scale-invariant (the same iterations in mm and in metres). 1e-9 x (75-82 mm)^2 on face
# templates is 6-7e-6 mm^2, under trimesh's absolute 1e-5 that never stopped ICP there.
_ICP_TOLERANCE = 1e-9
_DISTINCT = np.deg2rad(10.0)  # two ICP ends this far apart are different poses


def _subsample(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    if len(points) <= count:
        return points
    return points[np.random.default_rng(seed).choice(len(points), count, replace=False)]


def _angle(rotation: np.ndarray) -> float:
    """Rotation angle (radians) of a ``(3, 3)`` rotation."""
    return float(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))


def _rigid_icp(
    tree, target: np.ndarray, points: np.ndarray, initials: np.ndarray, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid ICP of ``points (n, 3)`` onto ``target`` from every ``initials (K, 4, 4)`` at once.

    The semantics of ``trimesh.registration.icp`` (``reflection=False, scale=False``): per
    iteration the closest target vertex of every moved point (``tree``, a ``cKDTree`` of
    ``target`` built once by the caller), then the closed-form rotation and translation
    (Kabsch) onto those; a candidate stops once its cost falls by less than
    ``_ICP_TOLERANCE`` x the mean squared distance of the ``target`` vertices from their
    centroid (its squared RMS radius): a rule relative to the template's size, so the
    same meshes in mm and in metres run the same iterations (trimesh's absolute 1e-5 in
    the template's unit squared is (3 mm)^2 in metres and stopped ICP after a few
    iterations). All candidates share one tree query per iteration.

    Returns:
        ``(matrices (K, 4, 4), costs (K,))``: scan -> template, and the mean squared distance
        to the closest points of the last iteration (after its update).
    """
    matrices = np.array(initials, dtype=np.float64)  # (K, 4, 4)
    tolerance = _ICP_TOLERANCE * float(((target - target.mean(axis=0)) ** 2).sum(axis=1).mean())
    moved = points[None] @ matrices[:, :3, :3].transpose(0, 2, 1) + matrices[:, None, :3, 3]
    costs = np.full(len(matrices), np.inf)
    active = np.ones(len(matrices), dtype=bool)
    for _ in range(iterations):  # a loop over ICP iterations, candidates batched
        index = np.flatnonzero(active)
        a = moved[index]  # (k, n, 3)
        _, nearest = tree.query(a.reshape(-1, 3), k=1)
        b = target[nearest].reshape(a.shape)
        a_center, b_center = a.mean(axis=1), b.mean(axis=1)
        cross = np.einsum("kni,knj->kij", b - b_center[:, None], a - a_center[:, None])
        u, _, vh = np.linalg.svd(cross)
        flip = np.ones((len(index), 3))
        flip[:, 2] = np.linalg.det(u @ vh)
        rotation = (u * flip[:, None, :]) @ vh  # u diag(1, 1, det(u vh)) vh: proper
        shift = b_center - np.einsum("kij,kj->ki", rotation, a_center)
        a = a @ rotation.transpose(0, 2, 1) + shift[:, None]
        cost = ((b - a) ** 2).sum(axis=2).mean(axis=1)
        step = np.zeros((len(index), 4, 4))
        step[:, :3, :3], step[:, :3, 3], step[:, 3, 3] = rotation, shift, 1.0
        moved[index] = a
        matrices[index] = step @ matrices[index]
        active[index] = costs[index] - cost >= tolerance
        costs[index] = cost
        if not active.any():
            break
    return matrices, costs


def _new_contender(
    rotations: np.ndarray, costs: np.ndarray, refined: np.ndarray, batch: np.ndarray, margin: float
) -> bool:
    """Whether a candidate of ``batch`` ends close to the best in a pose of its own.

    Close: within ``margin`` x the lowest refined cost; its own: more than ``_DISTINCT``
    from every refined candidate as good or better. ``rotations (K, 3, 3)`` and
    ``costs (K,)`` of every candidate, ``refined (K,)`` which of them ran the full ICP.
    """
    lowest = costs[refined].min()
    for i in batch[costs[batch] <= margin * lowest]:  # a loop over <= coarse_keep candidates
        better = np.flatnonzero(refined & (costs <= costs[i]))
        better = better[better != i]
        turns = [_angle(rotations[i] @ rotations[j].T) for j in better]
        if turns and min(turns) > _DISTINCT:
            return True
    return False


def _shortlist(costs: np.ndarray, keep: int, margin: float) -> np.ndarray:
    """Indices of the ``keep`` lowest ``costs`` and of every cost within ``margin`` x the lowest."""
    order = np.argsort(costs, kind="stable")
    close = costs[order] <= margin * costs[order[0]] + 1e-15
    close[:keep] = True
    return np.sort(order[close])


def alignment_candidates(
    template_vertices: np.ndarray,
    template_faces: np.ndarray,
    scan_points: np.ndarray,
    *,
    template_landmarks: np.ndarray | None = None,
    scan_landmarks: np.ndarray | None = None,
    scale: float | None = None,
    icp_points: int = 3000,
    icp_iterations: int = 30,
    coarse_points: int = 300,
    coarse_iterations: int = 20,
    coarse_keep: int = 5,
    coarse_margin: float = 2.0,
    exhaustive: bool = False,
) -> list[tuple[float, Similarity]]:
    """ICP-refined candidate similarities template -> scan, lowest cost first.

    Arguments as :func:`align_to_scan`. Without landmarks the 25 candidates (24 principal
    frames and the identity) first run a coarse ICP (``coarse_iterations`` on
    ``coarse_points`` scan points); the ``coarse_keep`` lowest and every one within
    ``coarse_margin`` x the lowest coarse cost then run the full ICP (``icp_iterations``
    on ``icp_points``) from their initial pose, the others are dropped. When that
    shortlist ends in a second pose (more than 10 degrees from every better one) within
    ``coarse_margin`` x the lowest cost, a flat field (as on many cropped faces) where the
    coarse ranking is not to be trusted, the rest run the full ICP too: the exhaustive
    search. ``exhaustive`` runs the full ICP from all 25 (the reference; 4-5x slower on
    face templates when one pose stands out). Near-ties (cost within 5 % of the lowest)
    are ordered by rotation angle, smallest first. With landmarks the list has one entry.

    Returns:
        ``[(cost, similarity), ...]``: the mean squared scan -> template vertex distance
        after ICP (template unit squared) and the template -> scan similarity, for the
        candidates that reached the full ICP.
    """
    from scipy.spatial import cKDTree

    del template_faces  # the dense template vertices serve ICP (a cKDTree, fast)
    target = np.asarray(template_vertices, np.float64)
    scan_points = np.asarray(scan_points, np.float64)
    points = _subsample(scan_points, icp_points)
    if template_landmarks is not None and scan_landmarks is not None:
        # template -> scan from the landmarks, the one candidate: the landmarks decide the
        # rotation (on a near-symmetric shape a landmark-blind candidate can tie with it
        # and win); ICP only refines it, scan -> template.
        candidates = [
            procrustes_similarity(template_landmarks, scan_landmarks, scale=scale is None)
        ]
    else:
        candidates = principal_axes_candidates(target, scan_points, scale=scale)
        # Identity rotation too: scans are often roughly upright already, and for a
        # symmetric shape the axis candidates tie; near-ties go to the smallest rotation.
        first = candidates[0]
        candidates.append(
            Similarity(first.scale, np.eye(3), scan_points.mean(0) - first.scale * target.mean(0))
        )
    tree = cKDTree(target)
    initials = np.stack(
        [candidate.inverse().matrix for candidate in candidates]
    )  # scan -> template
    if len(candidates) > coarse_keep and not exhaustive:
        coarse = _subsample(points, coarse_points, seed=1)
        _, screen = _rigid_icp(tree, target, coarse, initials, coarse_iterations)
        batch = _shortlist(screen, coarse_keep, coarse_margin)
        refined = np.zeros(len(initials), dtype=bool)
        matrices, costs = np.zeros_like(initials), np.full(len(initials), np.inf)
        for _ in range(2):  # the shortlist, then in a flat field the rest
            matrices[batch], costs[batch] = _rigid_icp(
                tree, target, points, initials[batch], icp_iterations
            )
            refined[batch] = True
            if not _new_contender(matrices[:, :3, :3], costs, refined, batch, coarse_margin):
                break  # one pose stands out: the coarse ranking found it
            batch = np.flatnonzero(~refined)  # a flat field: the coarse ranking is not trusted
        logger.debug("alignment: %d of %d candidates refined", refined.sum(), len(refined))
        matrices, costs = matrices[refined], costs[refined]
    else:
        matrices, costs = _rigid_icp(tree, target, points, initials, icp_iterations)
    results = [
        (float(cost), Similarity.from_matrix(matrix).inverse())
        for matrix, cost in zip(matrices, costs)
    ]
    lowest = min(cost for cost, _ in results)
    tie = 1.05 * lowest + 1e-15
    return sorted(
        results,
        key=lambda item: (item[0] > tie, _angle(item[1].rotation) if item[0] <= tie else item[0]),
    )


def align_to_scan(
    template_vertices: np.ndarray,
    template_faces: np.ndarray,
    scan_points: np.ndarray,
    *,
    template_landmarks: np.ndarray | None = None,
    scan_landmarks: np.ndarray | None = None,
    scale: float | None = None,
    icp_points: int = 3000,
    icp_iterations: int = 30,
    coarse_points: int = 300,
    coarse_iterations: int = 20,
    coarse_keep: int = 5,
    coarse_margin: float = 2.0,
    exhaustive: bool = False,
) -> tuple[Similarity, float]:
    """A similarity from the template's frame to the scan's, and its ICP cost.

    Args:
        template_vertices: ``(V, 3)`` template positions.
        template_faces: ``(F, 3)`` template triangles (ICP targets the template surface).
        scan_points: ``(P, 3)`` scan points (in the template's unit).
        template_landmarks: ``(K, 3)`` landmark positions on the template, optional.
        scan_landmarks: ``(K, 3)`` the same landmarks on the scan.
        scale: a fixed scale (e.g. 1 for a model in the scan's unit), else estimated from
            the landmarks or the point spread.
        icp_points: scan points used by ICP (random subset).
        icp_iterations: ICP iterations per candidate, at most: a candidate stops once its
            cost falls by less than 1e-9 x the template's squared RMS radius (relative to
            the template's size, so the result does not depend on the unit).
        coarse_points: scan points of the coarse ICP that screens the 25 landmark-free
            candidates (a random subset of the ``icp_points``).
        coarse_iterations: coarse ICP iterations per candidate.
        coarse_keep: candidates (lowest coarse cost first) that go on to the full ICP.
        coarse_margin: every candidate whose coarse cost is within this factor of the
            lowest goes on too (near-ties reach the full ICP and the smallest-rotation rule);
            a second pose within this factor of the lowest full-ICP cost sends every
            candidate to the full ICP.
        exhaustive: run the full ICP from every candidate (no coarse screen; the reference).

    Returns:
        ``(similarity, cost)``: template -> scan, and the mean squared scan -> template
        vertex distance after alignment (template unit squared).
    """
    cost, best = alignment_candidates(
        template_vertices,
        template_faces,
        scan_points,
        template_landmarks=template_landmarks,
        scan_landmarks=scan_landmarks,
        scale=scale,
        icp_points=icp_points,
        icp_iterations=icp_iterations,
        coarse_points=coarse_points,
        coarse_iterations=coarse_iterations,
        coarse_keep=coarse_keep,
        coarse_margin=coarse_margin,
        exhaustive=exhaustive,
    )[0]
    return best, cost
