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


def up_matrix(
    fine_vertices: np.ndarray,
    coarse_vertices: np.ndarray,
    coarse_faces: np.ndarray,
    kept: np.ndarray,
) -> sp.csr_matrix:
    """Up-sampling matrix ``U`` ``(n_fine, n_coarse)`` by closest-point projection.

    Closest points are found by :func:`deep3dmm.mesh.closest_point.closest_point` (equal
    to :func:`trimesh.proximity.closest_point`, with k-d tree candidates; vectorised). Tiny negative
    barycentric weights from round-off are clamped to 0 and rows renormalised to 1.
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
        with np.errstate(divide="ignore", invalid="ignore"):  # degenerate triangles -> NaN
            weights = trimesh.triangles.points_to_barycentric(coarse[corners], closest)  # (Q, 3)
        bad = ~np.isfinite(weights).all(axis=1)
        if bad.any():  # degenerate triangle: the nearest of its corners takes all weight
            distance = np.linalg.norm(coarse[corners[bad]] - closest[bad, None], axis=2)
            weights[bad] = np.eye(3)[np.argmin(distance, axis=1)]
        weights = np.clip(weights, 0.0, None)
        weights /= weights.sum(axis=1, keepdims=True)
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
