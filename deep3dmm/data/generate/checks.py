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
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, *, chunk: int = 256
) -> np.ndarray:
    """Generalized winding numbers of ``points`` with respect to a triangle mesh.

    Args:
        points: ``(P, 3)`` query points.
        vertices: ``(V, 3)`` mesh vertices.
        faces: ``(F, 3)`` outward-oriented triangles.
        chunk: points per vectorised block (memory ``chunk * F`` floats).

    Returns:
        ``(P,)`` float64 winding numbers.
    """
    points = np.asarray(points, dtype=np.float64)
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]  # (F, 3, 3)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        rel = tri[None] - points[start : start + chunk, None, None, :]  # (p, F, 3, 3)
        a, b, c = rel[..., 0, :], rel[..., 1, :], rel[..., 2, :]  # (p, F, 3)
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        numerator = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        denominator = (
            la * lb * lc
            + np.einsum("pfi,pfi->pf", a, b) * lc
            + np.einsum("pfi,pfi->pf", a, c) * lb
            + np.einsum("pfi,pfi->pf", b, c) * la
        )
        out[start : start + chunk] = 2.0 * np.arctan2(numerator, denominator).sum(-1)
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
