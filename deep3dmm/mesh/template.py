"""The template: the one topology that every registered mesh of a dataset shares."""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from deep3dmm.errors import TopologyMismatchError
from deep3dmm.mesh.io import read_mesh, write_mesh
from deep3dmm.mesh.unique import unique_rows

__all__ = ["Template", "UNITS", "guess_unit", "mesh_hash"]

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def mesh_hash(vertices: np.ndarray, faces: np.ndarray, *extra: object) -> str:
    """Content hash of a mesh (float32 vertices, int64 faces) and any extra parameters."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(vertices, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(faces, dtype=np.int64).tobytes())
    for item in extra:
        digest.update(repr(item).encode("utf-8"))
    return digest.hexdigest()[:16]


def guess_unit(vertices: np.ndarray) -> list[str]:
    """Units under which the mesh has human scale (largest extent 5 cm to 2.5 m).

    A heuristic for faces, hands and bodies: ``["m"]`` for a 0.25-wide head in
    metres; a 250-wide head could be millimetres or a 2.5 m object in
    centimetres, so both are returned. Empty when no unit gives human scale.
    """
    extent = float(np.ptp(np.asarray(vertices), axis=0).max())
    return [unit for unit, scale in UNITS.items() if 0.05 <= extent * scale <= 2.5]


class Template:
    """A template mesh: vertices, faces, a name and a unit ("m", "cm" or "mm").

    Args:
        vertices: ``(V, 3)`` template vertex positions.
        faces: ``(F, 3)`` triangles, shared by every mesh registered to this template.
        name: a label (the file stem when loaded).
        unit: length unit of the coordinates.
    """

    def __init__(
        self, vertices: np.ndarray, faces: np.ndarray, *, name: str = "template", unit: str = "m"
    ):
        if unit not in UNITS:
            raise ValueError(f"Template: unit must be one of {sorted(UNITS)}, got {unit!r}")
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float32)  # (V, 3)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)  # (F, 3)
        self.name = name
        self.unit = unit

    @classmethod
    def load(cls, path: str | os.PathLike, *, unit: str = "m", name: str | None = None) -> Template:
        """Read a template from a mesh file (vertex order kept)."""
        vertices, faces = read_mesh(path)
        return cls(vertices, faces, name=name or Path(path).stem, unit=unit)

    def save(self, path: str | os.PathLike) -> None:
        """Write the template mesh (format from the suffix), atomically."""
        write_mesh(path, self.vertices, self.faces)

    def __repr__(self) -> str:
        return (
            f"Template(name={self.name!r}, vertices={self.num_vertices}, "
            f"faces={self.num_faces}, unit={self.unit!r})"
        )

    @property
    def num_vertices(self) -> int:
        """Number of vertices V."""
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        """Number of triangles F."""
        return len(self.faces)

    @cached_property
    def hash(self) -> str:
        """Content hash of the vertices and faces (16 hex digits)."""
        return mesh_hash(self.vertices, self.faces)

    @cached_property
    def edges(self) -> np.ndarray:
        """Unique undirected edges ``(E, 2) int64`` with ``edges[:, 0] < edges[:, 1]``, sorted."""
        pairs = self.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
        return unique_rows(np.sort(pairs, axis=1))

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric vertex adjacency ``(V, V)`` with ones on edges (scipy CSR, float32)."""
        n, e = self.num_vertices, self.edges
        data = np.ones(2 * len(e), dtype=np.float32)
        rows = np.concatenate([e[:, 0], e[:, 1]])
        cols = np.concatenate([e[:, 1], e[:, 0]])
        return sp.csr_matrix((data, (rows, cols)), shape=(n, n))

    @cached_property
    def vertex_normals(self) -> np.ndarray:
        """Area-weighted unit vertex normals ``(V, 3) float32``."""
        v, f = self.vertices.astype(np.float64), self.faces
        face_normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # (F, 3)
        normals = np.zeros_like(v)
        for corner in range(3):
            np.add.at(normals, f[:, corner], face_normals)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        return (normals / np.where(length > 0, length, 1)).astype(np.float32)

    def validate(self, vertices: np.ndarray, *, path: str | os.PathLike | None = None) -> None:
        """Check that ``vertices`` (``(V, 3)`` or ``(N, V, 3)``) fit this template and are finite.

        Raises:
            TopologyMismatchError: wrong shape or vertex count, or NaN/inf values.
        """
        vertices = np.asarray(vertices)
        if vertices.ndim not in (2, 3) or vertices.shape[-1] != 3:
            raise TopologyMismatchError(
                f"expected vertices shaped (V, 3) or (N, V, 3), got {vertices.shape}", path=path
            )
        if vertices.shape[-2] != self.num_vertices:
            raise TopologyMismatchError(
                f"expected {self.num_vertices} vertices (template {self.name!r}), "
                f"found {vertices.shape[-2]}",
                path=path,
                fix="register the mesh to the template, or use the matching template",
            )
        if not np.isfinite(vertices).all():
            raise TopologyMismatchError(
                "vertices hold NaN or infinite values", path=path, fix="repair or drop this mesh"
            )

    def check_registered(
        self, mesh: tuple[np.ndarray, np.ndarray], *, path: str | os.PathLike | None = None
    ) -> None:
        """Check that a mesh ``(vertices, faces)`` is registered to this template.

        Same vertex count and exactly the same faces (same triangles in the same order).

        Raises:
            TopologyMismatchError: with the expected and found vertex/face counts.
        """
        vertices, faces = mesh
        self.validate(vertices, path=path)
        faces = np.asarray(faces)
        if faces.shape != self.faces.shape:
            raise TopologyMismatchError(
                f"expected {self.num_vertices} vertices / {self.num_faces} faces "
                f"(template {self.name!r}), found {len(vertices)} vertices / {len(faces)} faces",
                path=path,
                fix="all meshes must share the template's topology",
            )
        if not np.array_equal(faces, self.faces):
            differ = int((faces != self.faces).any(axis=1).sum())
            raise TopologyMismatchError(
                f"{differ} of {self.num_faces} faces differ from the template {self.name!r}",
                path=path,
                fix="all meshes must share the template's topology (same triangles, same order)",
            )
