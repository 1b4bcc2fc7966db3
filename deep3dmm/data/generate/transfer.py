r"""Deformation transfer through a subject's local geometry (Sumner and Popović, SIGGRAPH 2004).

A source mesh (the template, neutral) and its deformations (an expression's
displacement field) are carried onto a target mesh of the same topology (a subject,
neutral). Per triangle :math:`f` with corners :math:`i, j, k`, the frame
:math:`S_f = [x_j - x_i,\ x_k - x_i,\ n_f / \sqrt{\lVert n_f \rVert}]` (``(3, 3)``,
:math:`n_f` the unnormalised normal) gives the source deformation gradient
:math:`Q_f = S'_f S_f^{-1}`. It is expressed in the target's local frame,

.. math:: Q^{t}_f = R_f\, Q_f\, R_f^\top,\qquad R_f = \mathrm{polar}(T_f S_f^{-1}),

(:math:`T_f` the target's frame, :math:`R_f` the rotation taking the source triangle onto
the target's), and the deformed target is the least-squares fit of its edges to
:math:`Q^{t}_f E_f` (:math:`E_f` the target's two edges, weights the target areas):

.. math:: \min_u \sum_f a_f \lVert D_f u - (Q^t_f - I) E_f \rVert^2,\quad u = 0 \text{ on fixed}

(:math:`D` the ``(2F, V)`` edge operator, :math:`u` the displacement). The normal
equations :math:`D^\top W D` are factorised once per subject (sparse LU); every
deformation is then one back-substitution. A larger mouth gets a larger smile, a
tilted cheek a tilted bulge: the transferred displacement depends on the subject.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from deep3dmm.errors import ConfigError

__all__ = ["DeformationTransfer", "closest_rotations", "triangle_frames"]


def triangle_frames(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-triangle frames ``[e1, e2, n / sqrt|n|]`` as columns.

    Args:
        vertices: ``(..., V, 3)``.
        faces: ``(F, 3)``.

    Returns:
        ``(..., F, 3, 3)`` float64 frames (columns: the two edges and the scaled normal).
    """
    corners = np.asarray(vertices, dtype=np.float64)[..., faces, :]  # (..., F, 3, 3)
    e1 = corners[..., 1, :] - corners[..., 0, :]
    e2 = corners[..., 2, :] - corners[..., 0, :]
    normal = np.cross(e1, e2)
    normal = normal / np.sqrt(np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-30)
    return np.stack([e1, e2, normal], axis=-1)


def closest_rotations(matrices: np.ndarray) -> np.ndarray:
    """The rotation nearest each matrix (polar decomposition by SVD), ``(..., 3, 3)``."""
    u, _, vt = np.linalg.svd(matrices)
    sign = np.sign(np.linalg.det(u @ vt))  # (...,) reflections flipped to rotations
    u = u.copy()
    u[..., :, 2] *= sign[..., None]
    return u @ vt


class DeformationTransfer:
    """Transfer displacement fields from a source mesh onto a target mesh, in local frames.

    Args:
        source: ``(V, 3)`` the source mesh the displacements are given on.
        target: ``(V, 3)`` the target mesh (same topology).
        faces: ``(F, 3)`` triangles.
        fixed: ``(V,)`` bool, vertices whose displacement is 0 (at least one per connected
            component; e.g. the vertices no source deformation moves).
    """

    def __init__(
        self, source: np.ndarray, target: np.ndarray, faces: np.ndarray, *, fixed: np.ndarray
    ):
        faces = np.asarray(faces, dtype=np.int64)
        fixed = np.asarray(fixed, dtype=bool)
        if not fixed.any():
            raise ConfigError("DeformationTransfer needs at least one fixed vertex")
        self.faces = faces
        self.source = np.asarray(source, dtype=np.float64)
        self.source_inverse = np.linalg.inv(triangle_frames(self.source, faces))  # (F, 3, 3)
        target_frames = triangle_frames(target, faces)  # (F, 3, 3)
        self.rotations = closest_rotations(target_frames @ self.source_inverse)  # (F, 3, 3)
        self.target_edges = target_frames[..., :2]  # (F, 3, 2)
        area = 0.5 * np.linalg.norm(np.cross(*np.moveaxis(self.target_edges, -1, 0)), axis=-1)
        n_faces, n_vertices = len(faces), len(self.source)
        rows = np.repeat(np.arange(2 * n_faces), 2)  # edge e_k of face f is row 2 f + k
        cols = np.stack(
            [faces[:, 1], faces[:, 0], faces[:, 2], faces[:, 0]], axis=1
        ).ravel()  # (4F,) head, tail of e1, then of e2
        vals = np.tile([1.0, -1.0], 2 * n_faces)
        edges = sp.csr_matrix((vals, (rows, cols)), shape=(2 * n_faces, n_vertices))
        self.weights = np.repeat(area / area.mean(), 2)  # (2F,)
        self.free = np.flatnonzero(~fixed)
        self.edges_free = edges[:, self.free].tocsc()  # (2F, V_free)
        normal = (self.edges_free.T @ sp.diags(self.weights) @ self.edges_free).tocsc()
        self.solve = spla.splu(normal).solve  # factorised once
        self.n_vertices = n_vertices

    def __call__(self, displacements: np.ndarray) -> np.ndarray:
        """Transfer source displacement fields onto the target.

        Args:
            displacements: ``(K, V, 3)`` displacements of the source mesh.

        Returns:
            ``(K, V, 3)`` float64 displacements of the target (0 on the fixed vertices).
        """
        displacements = np.asarray(displacements, dtype=np.float64)
        k = len(displacements)
        deformed = triangle_frames(self.source + displacements, self.faces)  # (K, F, 3, 3)
        gradients = deformed @ self.source_inverse  # (K, F, 3, 3)
        local = self.rotations @ gradients @ np.swapaxes(self.rotations, -1, -2)
        wanted = local @ self.target_edges - self.target_edges  # (K, F, 3, 2)
        rhs = np.swapaxes(wanted, -1, -2).reshape(k, -1, 3)  # (K, 2F, 3) rows 2f + e
        rhs = np.moveaxis(rhs, 0, 1).reshape(rhs.shape[1], 3 * k)  # (2F, 3K)
        solved = self.solve(self.edges_free.T @ (self.weights[:, None] * rhs))  # (V_free, 3K)
        out = np.zeros((self.n_vertices, k, 3))
        out[self.free] = solved.reshape(len(self.free), k, 3)
        return np.moveaxis(out, 1, 0)
