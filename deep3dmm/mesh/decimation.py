r"""Quadric edge-collapse decimation (OpenMesh) and the down-sampling selection matrices D.

Garland & Heckbert, "Surface Simplification Using Quadric Error Metrics" (SIGGRAPH 1997),
as used by COMA (Ranjan et al., ECCV 2018) to build its mesh hierarchy. OpenMesh's
``TriMeshDecimater`` with ``ModQuadric`` collapses a half-edge ``v0 -> v1`` onto its
surviving endpoint ``v1`` (the position is not re-optimised), so every coarse vertex is a
fine vertex at exactly the same position and

.. math::
    V_{l+1} = D_l V_l, \qquad D_l \in \{0, 1\}^{n_{l+1} \times n_l}

with a single 1 per row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import openmesh as om
import scipy.sparse as sp

from deep3dmm.errors import ConfigError

__all__ = ["quadric_decimation", "down_matrix"]

logger = logging.getLogger(__name__)

_ORIGINAL = "deep3dmm_original_index"


def quadric_decimation(
    vertices: np.ndarray, faces: np.ndarray, factors: Sequence[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Decimate a triangle mesh level by level to ``ceil(n_l / factor_l)`` vertices.

    One OpenMesh mesh is decimated repeatedly (a fresh decimater and quadrics per
    level); each surviving vertex carries its original index in a vertex property, so
    the kept vertices are known exactly, not matched by position. The vertices of every
    level are ordered by their index in the finer level (so ``D`` is sorted).

    Isolated vertices and several connected components are fine (an isolated vertex
    can never be collapsed, so it survives every level).

    Args:
        vertices: ``(n_0, 3)`` template vertex positions.
        faces: ``(F_0, 3)`` triangles.
        factors: one decimation factor (>= 1) per coarser level.

    Returns:
        ``(kept, faces)``: ``kept[l]`` is the ``(n_{l+1},)`` int64 array of the
        indices (into level ``l``) of the vertices that survive to level ``l + 1``;
        ``faces[l]`` the ``(F_{l+1}, 3)`` int64 triangles of level ``l + 1`` indexing
        its own vertices.
    """
    factors = [int(f) for f in factors]
    if any(f < 1 for f in factors):
        raise ConfigError(
            f"decimation factors must be integers >= 1, got {factors}",
            fix="use factors such as 4 4 4 4",
        )
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    n0 = len(vertices)
    mesh = om.TriMesh(vertices, faces.astype(np.int32))
    if mesh.n_faces() != len(faces):
        logger.warning(
            "OpenMesh kept %d of %d faces (complex edges or degenerate faces were skipped); "
            "decimation works on the kept ones",
            mesh.n_faces(),
            len(faces),
        )
    mesh.set_vertex_property_array(_ORIGINAL, np.arange(n0, dtype=np.float64))
    previous = np.arange(n0)  # level-0 index of each vertex of the current level
    kept_levels, face_levels = [], []
    for factor in factors:
        target = math.ceil(len(previous) / factor)
        decimater = om.TriMeshDecimater(mesh)
        decimater.add(om.TriMeshModQuadricHandle())
        decimater.initialize()
        decimater.decimate_to(target)
        mesh.garbage_collection()
        original = mesh.vertex_property_array(_ORIGINAL).astype(np.int64)  # (n_{l+1},)
        order = np.argsort(original)
        survivors = original[order]  # sorted level-0 indices
        if len(survivors) != target:
            logger.warning(
                "quadric decimation stopped at %d vertices instead of %d (factor %d): "
                "no further collapse keeps the mesh manifold",
                len(survivors),
                target,
                factor,
            )
        # Level-0 -> level-(l+1) index, to renumber OpenMesh's faces in sorted order.
        rank = np.empty(len(original), dtype=np.int64)
        rank[order] = np.arange(len(original))
        om_faces = mesh.face_vertex_indices().astype(np.int64).reshape(-1, 3)
        face_levels.append(rank[om_faces])
        kept_levels.append(np.searchsorted(previous, survivors))
        previous = survivors
    return kept_levels, face_levels


def down_matrix(kept: np.ndarray, num_fine: int) -> sp.csr_matrix:
    """The selection matrix ``D`` ``(len(kept), num_fine)``: ``D[i, kept[i]] = 1``."""
    kept = np.asarray(kept, dtype=np.int64)
    data = np.ones(len(kept), dtype=np.float32)
    return sp.csr_matrix(
        (data, kept, np.arange(len(kept) + 1)), shape=(len(kept), num_fine), dtype=np.float32
    )
