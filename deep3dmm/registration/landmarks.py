"""Landmarks: 3D points on a scan, and their counterparts on the template.

Scan landmarks are ``(K, 3)`` points (text, CSV or ``.npy``). Template landmarks are
either vertex ids (one integer per line, or a ``(K,)`` integer array) or barycentric
coordinates on faces (rows ``face_id w0 w1 w2``, a ``(K, 4)`` array), the two forms
``trimesh.registration.nricp_amberg`` accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep3dmm.errors import ConfigError, MeshFormatError
from deep3dmm.registration.scan import read_point_array

__all__ = ["TemplateLandmarks", "read_scan_landmarks", "read_template_landmarks", "check_counts"]


@dataclass(frozen=True)
class TemplateLandmarks:
    """Landmarks on the template: vertex ids, or faces with barycentric weights.

    Attributes:
        vertex_ids: ``(K,) int64`` or ``None``.
        face_ids: ``(K,) int64`` or ``None`` (barycentric form).
        weights: ``(K, 3) float64`` barycentric weights (rows sum to 1) or ``None``.
    """

    vertex_ids: np.ndarray | None = None
    face_ids: np.ndarray | None = None
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.vertex_ids if self.vertex_ids is not None else self.face_ids)

    def positions(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """``(K, 3)`` landmark positions on a mesh of the template's topology ``(V, 3)``."""
        if self.vertex_ids is not None:
            return np.asarray(vertices)[self.vertex_ids]
        corners = np.asarray(vertices)[np.asarray(faces)[self.face_ids]]  # (K, 3, 3)
        return np.einsum("kc,kcd->kd", self.weights, corners)

    def matrix(self, num_vertices: int, faces: np.ndarray):
        """Sparse ``(K, V)`` matrix ``L`` with ``L @ vertices`` = the landmark positions."""
        import scipy.sparse as sp

        k = len(self)
        if self.vertex_ids is not None:
            rows, cols, vals = np.arange(k), self.vertex_ids, np.ones(k)
        else:
            rows = np.repeat(np.arange(k), 3)
            cols = np.asarray(faces)[self.face_ids].reshape(-1)
            vals = self.weights.reshape(-1)
        return sp.csr_matrix((vals, (rows, cols)), shape=(k, num_vertices))

    def for_nricp(self):
        """The ``source_landmarks`` argument of ``trimesh.registration.nricp_amberg``."""
        if self.vertex_ids is not None:
            return self.vertex_ids
        return (self.face_ids, self.weights)


def read_scan_landmarks(path: str | os.PathLike) -> np.ndarray:
    """``(K, 3)`` landmark points of a scan (text, CSV or ``.npy``).

    Raises:
        MeshFormatError: unreadable, not ``(K, 3)``, or NaN values.
    """
    points = read_point_array(path)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise MeshFormatError(
            f"scan landmarks must be (K, 3) points, got shape {points.shape}",
            path=path,
            fix="one 'x y z' row per landmark",
        )
    if not np.isfinite(points).all():
        raise MeshFormatError("scan landmarks hold NaN or infinite values", path=path)
    return points


def read_template_landmarks(
    path: str | os.PathLike, *, num_vertices: int, num_faces: int
) -> TemplateLandmarks:
    """Template landmarks from a file of vertex ids ``(K,)`` or ``face w0 w1 w2`` rows ``(K, 4)``.

    Raises:
        MeshFormatError: unreadable file, wrong shape, an id out of range, or weights that
            do not sum to 1.
    """
    path = Path(path)
    array = read_point_array(path, xyz_only=False)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1:
        ids = array.astype(np.int64)
        if len(ids) == 0 or not np.array_equal(ids, array):
            raise MeshFormatError("template vertex ids must be integers", path=path)
        if ids.min() < 0 or ids.max() >= num_vertices:
            raise MeshFormatError(
                f"template vertex ids must lie in [0, {num_vertices}), got "
                f"{ids.min()}..{ids.max()}",
                path=path,
            )
        return TemplateLandmarks(vertex_ids=ids)
    if array.ndim == 2 and array.shape[1] == 4:
        face_ids = array[:, 0].astype(np.int64)
        weights = array[:, 1:]
        if face_ids.min() < 0 or face_ids.max() >= num_faces:
            raise MeshFormatError(f"face ids must lie in [0, {num_faces})", path=path)
        if not np.allclose(weights.sum(axis=1), 1.0, atol=1e-3) or (weights < -1e-6).any():
            raise MeshFormatError(
                "barycentric weights must be >= 0 and sum to 1 on every row", path=path
            )
        return TemplateLandmarks(face_ids=face_ids, weights=weights)
    raise MeshFormatError(
        f"template landmarks must be vertex ids (K,) or 'face w0 w1 w2' rows (K, 4), "
        f"got shape {array.shape}",
        path=path,
    )


def check_counts(
    scan_points: np.ndarray,
    template: TemplateLandmarks,
    *,
    scan_path: str | os.PathLike | None = None,
    template_path: str | os.PathLike | None = None,
) -> None:
    """Scan and template landmarks must pair up one to one.

    Raises:
        ConfigError: the counts differ (both files are named).
    """
    if len(scan_points) != len(template):
        raise ConfigError(
            f"landmark count mismatch: {len(scan_points)} scan landmarks in "
            f"{scan_path or 'the scan landmarks'} but {len(template)} template landmarks in "
            f"{template_path or 'the template landmarks'}",
            fix="give both files the same landmarks in the same order",
        )
