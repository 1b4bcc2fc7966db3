"""Raw scans: triangle meshes or point clouds, read without assuming a registered topology.

A scan is what a capture device or a reconstruction pipeline hands over: a mesh in any
topology (``.ply`` / ``.obj`` / ``.off``), a point cloud (a PLY with vertices only, or
``.npy`` / ``.xyz`` / ``.txt`` / ``.csv`` arrays of ``(P, 3)`` points). Its length unit
may differ from the template's; :func:`scan_unit_scale` detects a power-of-ten mismatch
(a scan in mm against a template in m) by comparing sizes.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from deep3dmm.errors import ConfigError, MeshFormatError
from deep3dmm.mesh.template import UNITS

__all__ = ["Scan", "SCAN_SUFFIXES", "read_scan", "scan_unit_scale", "read_point_array"]

logger = logging.getLogger(__name__)

MESH_SCAN_SUFFIXES = (".ply", ".obj", ".off")
POINT_SUFFIXES = (".npy", ".xyz", ".txt", ".csv")
SCAN_SUFFIXES = MESH_SCAN_SUFFIXES + POINT_SUFFIXES


@dataclass(frozen=True)
class Scan:
    """A raw scan.

    Attributes:
        points: ``(P, 3) float64`` vertex / point positions.
        faces: ``(F, 3) int64`` triangles, or ``None`` for a point cloud.
        normals: ``(P, 3)`` unit normals when the file holds them (point clouds), else ``None``.
        path: the file it came from, or ``None``.
    """

    points: np.ndarray
    faces: np.ndarray | None = None
    normals: np.ndarray | None = None
    path: Path | None = None

    @property
    def has_faces(self) -> bool:
        """Whether the scan is a triangle mesh (else a point cloud)."""
        return self.faces is not None and len(self.faces) > 0

    @property
    def name(self) -> str:
        """The file stem, or ``"scan"``."""
        return self.path.stem if self.path is not None else "scan"

    def trimesh(self):
        """A ``trimesh.Trimesh`` (mesh scans) or ``trimesh.PointCloud`` (a fresh copy)."""
        import trimesh

        if self.has_faces:
            return trimesh.Trimesh(self.points.copy(), self.faces.copy(), process=False)
        return trimesh.PointCloud(self.points.copy())

    def scaled(self, factor: float) -> Scan:
        """The scan with coordinates multiplied by ``factor`` (a unit change)."""
        return replace(self, points=self.points * float(factor))

    def transformed(self, matrix: np.ndarray) -> Scan:
        """The scan moved by a ``(4, 4)`` homogeneous similarity (normals rotated)."""
        points = self.points @ matrix[:3, :3].T + matrix[:3, 3]
        normals = None
        if self.normals is not None:
            rotated = self.normals @ matrix[:3, :3].T
            normals = rotated / np.linalg.norm(rotated, axis=1, keepdims=True)
        return replace(self, points=points, normals=normals)


def _check_points(points: np.ndarray, path: Path | None) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise MeshFormatError(
            f"expected (P, 3) points, got shape {points.shape}", path=path, fix="store x y z rows"
        )
    if len(points) == 0:
        raise MeshFormatError("the scan holds no points", path=path, fix="re-export the scan")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise MeshFormatError(
            f"{int(bad.sum())} of {len(points)} points have NaN or infinite coordinates",
            path=path,
            fix="drop those points (or the faces using them) before registering or fitting",
        )
    return points


def read_point_array(path: str | os.PathLike, *, xyz_only: bool = True) -> np.ndarray:
    """Numbers from ``.npy`` or a text table (whitespace or comma separated).

    Text rows may hold more than three columns (x y z nx ny nz ...); with ``xyz_only``
    the first three are used. A header line is skipped.

    Raises:
        MeshFormatError: missing, empty or unparsable file.
    """
    path = Path(path)
    if not path.is_file():
        raise MeshFormatError("file not found", path=path, fix="check the path")
    if path.stat().st_size == 0:
        raise MeshFormatError("file is empty", path=path, fix="re-export it")
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            text = path.read_text(encoding="utf-8").replace(",", " ").splitlines()
            rows = [line.split() for line in text if line.strip() and not line.startswith("#")]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # a header
            array = np.array([[float(v) for v in row] for row in rows], dtype=np.float64)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise MeshFormatError(
            f"cannot parse points ({type(exc).__name__}: {exc})",
            path=path,
            fix="store one 'x y z' row per point (text/CSV) or a (P, 3) .npy array",
        ) from exc
    array = np.asarray(array, dtype=np.float64)
    if xyz_only and array.ndim == 2 and array.shape[1] > 3 and path.suffix.lower() != ".npy":
        array = array[:, :3]
    return array


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_scan(path: str | os.PathLike) -> Scan:
    """Read a scan: a mesh in any topology, or a point cloud.

    Args:
        path: ``.ply`` / ``.obj`` / ``.off`` (mesh or vertex-only PLY), or ``.npy`` /
            ``.xyz`` / ``.txt`` / ``.csv`` points.

    Raises:
        MeshFormatError: missing, empty, corrupt file, no points, NaN coordinates, face
            indices out of range, or an unsupported suffix.
    """
    from deep3dmm.mesh.io import load_geometry

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        raise MeshFormatError(
            f"unsupported scan format {suffix or '(no suffix)'!r}",
            path=path,
            fix=f"use one of {', '.join(SCAN_SUFFIXES)}",
        )
    if suffix in POINT_SUFFIXES:
        return Scan(points=_check_points(read_point_array(path), path), path=path)
    loaded = load_geometry(path, suffix)
    points = _check_points(getattr(loaded, "vertices", np.empty((0, 3))), path)
    faces = getattr(loaded, "faces", None)
    if faces is None or len(faces) == 0:
        normals = None
        raw = getattr(loaded, "metadata", {}).get("_ply_raw", {}).get("vertex", {}).get("data")
        if raw is not None and raw.dtype.names and {"nx", "ny", "nz"} <= set(raw.dtype.names):
            normals = np.column_stack([raw["nx"], raw["ny"], raw["nz"]]).astype(np.float64)
        return Scan(points=points, normals=normals, path=path)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.min() < 0 or faces.max() >= len(points):
        raise MeshFormatError(
            f"face indices out of range [0, {len(points)})", path=path, fix="re-export the scan"
        )
    return Scan(points=points, faces=faces, path=path)


def _extent(points: np.ndarray) -> float:
    return float(np.ptp(np.asarray(points, dtype=np.float64), axis=0).max())


def scan_unit_scale(
    scan_points: np.ndarray,
    template_vertices: np.ndarray,
    *,
    template_unit: str = "m",
    scan_unit: str | None = None,
    where: str | os.PathLike | None = None,
) -> tuple[float, str]:
    """Factor that brings scan coordinates into the template's unit, and a note saying why.

    With ``scan_unit`` given the factor follows from the units. Otherwise the sizes
    decide: a scan whose largest extent is 1/5 to 5 times the template's is taken to be
    in the same unit; a ratio near a power of ten (10, 100, 1000 or their inverses,
    within a factor 2) is a unit mismatch, converted and reported.

    Args:
        scan_points: ``(P, 3)`` scan coordinates.
        template_vertices: ``(V, 3)`` template coordinates.
        template_unit: "m", "cm" or "mm".
        scan_unit: the scan's unit when known.
        where: the scan file, for error messages.

    Returns:
        ``(factor, note)``; ``note`` is empty when nothing was converted.

    Raises:
        ConfigError: an unknown unit, or a size ratio that no unit explains.
    """
    if template_unit not in UNITS:
        raise ConfigError(f"template unit must be one of {sorted(UNITS)}, got {template_unit!r}")
    if scan_unit is not None:
        if scan_unit not in UNITS:
            raise ConfigError(
                f"scan unit must be one of {sorted(UNITS)}, got {scan_unit!r}", fix="--scan-unit mm"
            )
        factor = UNITS[scan_unit] / UNITS[template_unit]
        note = "" if factor == 1 else f"scan unit {scan_unit} converted to {template_unit}"
        return factor, note
    ratio = _extent(scan_points) / max(_extent(template_vertices), 1e-12)
    if 0.2 <= ratio <= 5.0:
        return 1.0, ""
    power = round(math.log10(ratio))
    if power != 0 and abs(math.log10(ratio) - power) <= math.log10(2):
        factor = 10.0 ** (-power)
        units = {v: k for k, v in UNITS.items()}
        guess = units.get(UNITS[template_unit] * factor)
        named = f"to be in {guess} " if guess else ""
        note = (
            f"the scan is {ratio:.4g}x the template's size: it looks {named}against a template "
            f"in {template_unit}; scaled by {factor:g} (pass --scan-unit to state it)"
        )
        logger.warning("%s: %s", where or "scan", note)
        return factor, note
    raise ConfigError(
        f"the scan is {ratio:.4g}x the template's size, which no unit change explains",
        path=where,
        fix="check that scan and template show the same kind of object, or pass --scan-unit",
    )
