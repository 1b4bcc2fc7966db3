"""Honest synthetic scans of registered meshes with known ground truth.

To measure registration and fitting, a held-out registered mesh is turned into what a
scanner would give: another topology (subdivide, then quadric decimation to a different
vertex count, so no vertex keeps its index), Gaussian noise, a random rigid motion, and
optionally a missing region. The ground truth is the original mesh moved by the same
motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deep3dmm.errors import ConfigError
from deep3dmm.registration.rigid import Similarity
from deep3dmm.registration.scan import Scan

__all__ = ["SyntheticScan", "remesh", "random_rotation", "crop", "synthetic_scan"]


@dataclass
class SyntheticScan:
    """A simulated scan and its ground truth.

    Attributes:
        scan: the scan (another topology, noisy, moved, maybe cropped).
        truth: ``(V, 3)`` the registered mesh moved by ``motion`` (template topology).
        motion: the rigid motion applied (original frame -> scan frame).
    """

    scan: Scan
    truth: np.ndarray
    motion: Similarity


def remesh(vertices: np.ndarray, faces: np.ndarray, *, ratio: float = 0.8):
    """Another triangulation of the same surface: one loop-free subdivision, then decimation.

    Subdivision (``trimesh.remesh.subdivide``) adds every edge midpoint; quadric
    decimation (OpenMesh, :func:`deep3dmm.mesh.quadric_decimation`) then keeps about
    ``ratio`` times the original vertex count, a mix of original vertices and midpoints
    in a new connectivity.

    Returns:
        ``(vertices (V', 3), faces (F', 3))``.
    """
    import trimesh

    from deep3dmm.mesh import quadric_decimation

    fine_v, fine_f = trimesh.remesh.subdivide(np.asarray(vertices, np.float64), faces)
    factor = len(fine_v) / max(1.0, ratio * len(vertices))
    if factor <= 1:
        raise ConfigError(f"remesh ratio {ratio} keeps more vertices than the subdivision has")
    # quadric_decimation takes integer factors per level: reach the count in one level
    # of ceil(n / factor); round to the nearest integer factor >= 2.
    kept, coarse_faces = quadric_decimation(fine_v, fine_f, [max(2, int(round(factor)))])
    return fine_v[kept[0]], coarse_faces[0]


def random_rotation(rng: np.random.Generator, *, max_degrees: float = 180.0) -> np.ndarray:
    """A random ``(3, 3)`` rotation about a uniform axis by an angle up to ``max_degrees``."""
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0.0, max_degrees))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def crop(scan: Scan, direction: np.ndarray, *, missing: float = 0.4) -> Scan:
    """Remove the fraction ``missing`` of points farthest along ``direction`` (a plane cut).

    Faces touching a removed point go too; points left without a face are dropped.
    """
    if not 0.0 <= missing < 1.0:
        raise ConfigError(f"missing must be in [0, 1), got {missing}")
    direction = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    height = scan.points @ direction  # (P,)
    keep = height <= np.quantile(height, 1.0 - missing)
    if not scan.has_faces:
        return Scan(points=scan.points[keep], path=scan.path)
    faces = scan.faces[keep[scan.faces].all(axis=1)]
    used = np.unique(faces)
    remap = np.full(len(scan.points), -1)
    remap[used] = np.arange(len(used))
    return Scan(points=scan.points[used], faces=remap[faces], path=scan.path)


def synthetic_scan(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    rng: np.random.Generator,
    noise: float = 0.0,
    rotate_degrees: float = 180.0,
    translate: float = 0.0,
    remesh_ratio: float | None = 0.8,
    missing: float = 0.0,
    crop_direction=(1.0, 0.0, 0.0),
) -> SyntheticScan:
    """Simulate a scan of a registered mesh (remesh, noise, rigid motion, crop).

    Args:
        vertices: ``(V, 3)`` registered mesh (ground truth), dataset unit.
        faces: ``(F, 3)`` template triangles.
        rng: random generator.
        noise: Gaussian noise sigma per coordinate, dataset unit (0.5 mm = 5e-4 m).
        rotate_degrees: largest rotation angle of the random motion.
        translate: largest translation per axis, dataset unit.
        remesh_ratio: new vertex count / original, or ``None`` to keep the topology.
        missing: fraction of the scan removed by a plane cut (in the original frame).
        crop_direction: direction of the cut in the original frame.
    """
    vertices = np.asarray(vertices, np.float64)
    if remesh_ratio is None:
        points, scan_faces = vertices.copy(), np.asarray(faces, np.int64)
    else:
        points, scan_faces = remesh(vertices, faces, ratio=remesh_ratio)
    scan = Scan(points=points, faces=scan_faces)
    if missing > 0:
        scan = crop(scan, np.asarray(crop_direction), missing=missing)
    if noise > 0:
        scan = Scan(
            points=scan.points + rng.normal(0.0, noise, scan.points.shape), faces=scan.faces
        )
    motion = Similarity(
        1.0, random_rotation(rng, max_degrees=rotate_degrees), rng.uniform(-1, 1, 3) * translate
    )
    return SyntheticScan(
        scan=scan.transformed(motion.matrix), truth=motion.apply(vertices), motion=motion
    )
