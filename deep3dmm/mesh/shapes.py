"""Small procedural meshes for fast tests: closed (icosphere, torus) and open (grid patch)."""

from __future__ import annotations

import numpy as np
import trimesh

__all__ = ["icosphere", "grid", "torus"]


def icosphere(subdivisions: int = 2, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Closed genus-0 sphere: ``10 * 4**s + 2`` vertices.

    Returns:
        ``(vertices (V, 3) float32, faces (F, 3) int64)``, outward-facing triangles.
    """
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return mesh.vertices.astype(np.float32), mesh.faces.astype(np.int64)


def grid(rows: int = 8, cols: int = 8, size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Flat open patch in the z = 0 plane with one boundary loop, ``rows * cols`` vertices.

    Each grid cell is split into two counter-clockwise triangles (normals +z).
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"grid: rows and cols must be >= 2, got {rows}, {cols}")
    y, x = np.meshgrid(np.linspace(0, size, rows), np.linspace(0, size, cols), indexing="ij")
    vertices = np.stack([x, y, np.zeros_like(x)], axis=-1).reshape(-1, 3)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return vertices.astype(np.float32), faces.astype(np.int64)


def torus(
    major: int = 16, minor: int = 8, major_radius: float = 1.0, minor_radius: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Closed genus-1 torus with ``major * minor`` vertices (Euler characteristic 0)."""
    if major < 3 or minor < 3:
        raise ValueError(f"torus: major and minor must be >= 3, got {major}, {minor}")
    u = np.linspace(0, 2 * np.pi, major, endpoint=False)[:, None]
    v = np.linspace(0, 2 * np.pi, minor, endpoint=False)[None, :]
    ring = major_radius + minor_radius * np.cos(v)
    vertices = np.stack(
        [ring * np.cos(u), ring * np.sin(u), minor_radius * np.sin(v) + 0 * u], axis=-1
    ).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(major), np.arange(minor), indexing="ij")
    a = i * minor + j
    b = ((i + 1) % major) * minor + j
    c = i * minor + (j + 1) % minor
    d = ((i + 1) % major) * minor + (j + 1) % minor
    faces = np.concatenate(
        [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    )
    return vertices.astype(np.float32), faces.astype(np.int64)
