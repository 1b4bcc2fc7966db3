r"""The up-sampling matrices U: barycentric weights of each fine vertex on the coarse surface.

COMA (Ranjan et al., ECCV 2018), section 3.2: a vertex kept by decimation maps 1:1 to
itself; every other fine vertex ``v`` is projected to the closest point ``p`` of the coarse
surface, which lies in a coarse triangle ``(a, b, c)``; its row of ``U`` holds the
barycentric coordinates of ``p`` in that triangle:

.. math::
    p = w_a a + w_b b + w_c c, \qquad w \ge 0, \quad w_a + w_b + w_c = 1,
    \qquad (U V_{l+1})_v = p.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import trimesh
from scipy.spatial import cKDTree

from deep3dmm.mesh.closest_point import closest_point

__all__ = ["up_matrix"]


def _edge_weights(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Weights ``(Q, 3)`` of the closest point to ``points`` on the nearest edge of each triangle.

    For a degenerate triangle (a segment or a point) whose barycentric coordinates are
    undefined: ``(1 - t, t)`` on the two corners of the edge nearest the point.
    """
    rows = np.arange(len(points))
    best = np.full(len(points), np.inf)
    weights = np.zeros((len(points), 3))
    for i, j in ((0, 1), (1, 2), (2, 0)):
        start, edge = triangles[:, i], triangles[:, j] - triangles[:, i]  # (Q, 3)
        length = np.einsum("qj,qj->q", edge, edge)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.einsum("qj,qj->q", points - start, edge) / length
        t = np.where(length > 0, np.clip(t, 0.0, 1.0), 0.0)  # (Q,)
        gap = np.linalg.norm(start + t[:, None] * edge - points, axis=1)
        closer = gap < best
        best[closer] = gap[closer]
        weights[closer] = 0.0
        weights[rows[closer], i] = 1.0 - t[closer]
        weights[rows[closer], j] += t[closer]
    return weights


def up_matrix(
    fine_vertices: np.ndarray,
    coarse_vertices: np.ndarray,
    coarse_faces: np.ndarray,
    kept: np.ndarray,
) -> sp.csr_matrix:
    """Up-sampling matrix ``U`` ``(n_fine, n_coarse)`` by closest-point projection.

    Closest points are found by :func:`deep3dmm.mesh.closest_point.closest_point` (equal
    to :func:`trimesh.proximity.closest_point`, with k-d tree candidates; vectorised).
    Tiny negative barycentric weights from round-off are clamped to 0 and rows
    renormalised to 1. On a (nearly) degenerate triangle, where barycentric coordinates
    do not reproduce the point, the weights are those of the point on the triangle's
    nearest edge (two corners), so that ``U V_{l+1}`` is the closest point there too.
    When the coarse level has no triangles, a fine vertex maps to its nearest coarse
    vertex.

    Args:
        fine_vertices: ``(n_fine, 3)`` positions of level ``l``.
        coarse_vertices: ``(n_coarse, 3)`` positions of level ``l + 1``.
        coarse_faces: ``(F, 3)`` triangles of level ``l + 1``.
        kept: ``(n_coarse,)`` index into level ``l`` of each coarse vertex.

    Returns:
        ``U`` as a float32 CSR matrix with rows summing to 1.
    """
    fine = np.asarray(fine_vertices, dtype=np.float64)
    coarse = np.asarray(coarse_vertices, dtype=np.float64)
    coarse_faces = np.asarray(coarse_faces, dtype=np.int64)
    n_fine, n_coarse = len(fine), len(coarse)
    kept = np.asarray(kept, dtype=np.int64)

    is_kept = np.zeros(n_fine, dtype=bool)
    is_kept[kept] = True
    query = np.flatnonzero(~is_kept)  # (Q,) fine vertices to project

    if len(query) and len(coarse_faces):
        closest, _, triangle = closest_point(coarse, coarse_faces, fine[query])
        corners = coarse_faces[triangle]  # (Q, 3)
        triangles = coarse[corners]  # (Q, 3, 3)
        with np.errstate(divide="ignore", invalid="ignore"):  # degenerate triangles -> NaN
            weights = trimesh.triangles.points_to_barycentric(triangles, closest)  # (Q, 3)
            weights = np.clip(weights, 0.0, None)
            weights /= weights.sum(axis=1, keepdims=True)
        # A (nearly) degenerate triangle is a segment: weights on the edge holding the point.
        scale = np.linalg.norm(triangles - triangles[:, [1, 2, 0]], axis=2).max(axis=1)  # (Q,)
        error = np.linalg.norm(np.einsum("qk,qkj->qj", weights, triangles) - closest, axis=1)
        bad = np.flatnonzero(~(error <= 1e-7 * scale))  # NaN included
        if len(bad):
            segment = _edge_weights(triangles[bad], closest[bad])
            segment_error = np.linalg.norm(
                np.einsum("qk,qkj->qj", segment, triangles[bad]) - closest[bad], axis=1
            )
            better = ~(error[bad] <= segment_error)
            weights[bad[better]] = segment[better]
    elif len(query):
        _, nearest = cKDTree(coarse).query(fine[query])
        corners = np.repeat(nearest[:, None], 3, axis=1)
        weights = np.full((len(query), 3), 1.0 / 3.0)
    else:
        corners = np.zeros((0, 3), dtype=np.int64)
        weights = np.zeros((0, 3))

    rows = np.concatenate([kept, np.repeat(query, 3)])
    cols = np.concatenate([np.arange(n_coarse), corners.ravel()])
    data = np.concatenate([np.ones(n_coarse), weights.ravel()]).astype(np.float32)
    up = sp.csr_matrix((data, (rows, cols)), shape=(n_fine, n_coarse), dtype=np.float32)
    up.eliminate_zeros()
    up.sort_indices()
    return up
