r"""Plausibility checks of generated meshes: interpenetration by winding numbers.

A posed surface intersects itself when part of it enters the volume that the rest
encloses (a finger inside the palm, lips through each other). The generalized
winding number (Jacobson et al., "Robust Inside-Outside Segmentation using
Generalized Winding Numbers", SIGGRAPH 2013) of a point :math:`p`,

.. math:: w(p) = \frac{1}{4\pi} \sum_{f} \Omega_f(p),\qquad
    \tan\frac{\Omega_f}{2} = \frac{a \cdot (b \times c)}{|a||b||c| + (a\cdot b)|c|
    + (a \cdot c)|b| + (b \cdot c)|a|}

(Van Oosterom and Strackee, with :math:`a, b, c` the corners of triangle :math:`f`
relative to :math:`p`), is about 1 inside, 0 outside and 1/2 on the surface, and
stays meaningful for surfaces with small holes (the wrist or neck opening).
A vertex with :math:`w > 0.75` lies inside the surface: the mesh interpenetrates.
"""

from __future__ import annotations

import numpy as np

__all__ = ["inside_vertices", "winding_numbers"]


def winding_numbers(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, *, block: int = 65536
) -> np.ndarray:
    """Generalized winding numbers of ``points`` with respect to a triangle mesh.

    Vectorised over blocks of points x all faces (about ``block`` pairs at a time, so the
    working arrays stay in cache); cost O(P F).

    Args:
        points: ``(P, 3)`` query points.
        vertices: ``(V, 3)`` mesh vertices.
        faces: ``(F, 3)`` outward-oriented triangles.
        block: point-face pairs evaluated per step.

    Returns:
        ``(P,)`` float64 winding numbers.
    """
    points = np.asarray(points, dtype=np.float64)
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]  # (F, 3, 3)
    t0, t1, t2 = (np.ascontiguousarray(corners[:, k].T) for k in range(3))  # (3, F) each
    chunk = max(1, block // max(1, len(corners)))
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start : start + chunk, :, None]  # (p, 3, 1)
        a, b, c = t0[None] - p, t1[None] - p, t2[None] - p  # (p, 3, F)
        ax, ay, az = a[:, 0], a[:, 1], a[:, 2]
        bx, by, bz = b[:, 0], b[:, 1], b[:, 2]
        cx, cy, cz = c[:, 0], c[:, 1], c[:, 2]
        triple = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
        la = np.sqrt(ax * ax + ay * ay + az * az)
        lb = np.sqrt(bx * bx + by * by + bz * bz)
        lc = np.sqrt(cx * cx + cy * cy + cz * cz)
        denominator = (
            la * lb * lc
            + (ax * bx + ay * by + az * bz) * lc
            + (ax * cx + ay * cy + az * cz) * lb
            + (bx * cx + by * cy + bz * cz) * la
        )
        out[start : start + chunk] = 2.0 * np.arctan2(triple, denominator).sum(axis=-1)
    return out / (4.0 * np.pi)


def inside_vertices(
    vertices: np.ndarray, faces: np.ndarray, *, threshold: float = 0.75
) -> np.ndarray:
    """Which vertices of a mesh lie inside the mesh itself (self-intersection).

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` outward-oriented triangles.
        threshold: winding number above which a vertex counts as inside.

    Returns:
        ``(V,)`` bool mask.
    """
    return winding_numbers(vertices, vertices, faces) > threshold
