"""How well a registration (or a fit) covers its scan: distances in mm both ways, a heat map.

- scan -> result: distance of every scan point to the registered surface
  (``trimesh.proximity.closest_point``), the fraction within 1 / 2 / 5 mm;
- result -> scan: distance of every registered vertex to the scan surface (or to the
  nearest scan point for a point cloud, scipy ``cKDTree``).

Both are summarised by mean, median and 95th percentile, in millimetres.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_write_text
from deep3dmm.registration.scan import Scan

__all__ = [
    "WITHIN_MM",
    "distance_summary",
    "surface_distances",
    "scan_report",
    "write_json",
    "residual_figure",
]

WITHIN_MM = (1.0, 2.0, 5.0)


def distance_summary(distances_mm: np.ndarray) -> dict:
    """Mean, median, 95th percentile and max of distances in mm, plus within 1/2/5 mm."""
    d = np.asarray(distances_mm, np.float64)
    out = {
        "mean_mm": float(d.mean()),
        "median_mm": float(np.median(d)),
        "p95_mm": float(np.percentile(d, 95)),
        "max_mm": float(d.max()),
    }
    for limit in WITHIN_MM:
        out[f"within_{limit:g}mm"] = float((d <= limit).mean())
    return out


def surface_distances(
    vertices: np.ndarray, faces: np.ndarray, scan: Scan
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (dataset unit) scan -> surface ``(P,)`` and surface vertices -> scan ``(V,)``.

    Args:
        vertices: ``(V, 3)`` the registered / fitted mesh.
        faces: ``(F, 3)`` its triangles.
        scan: the scan in the same frame and unit.
    """
    import trimesh
    from scipy.spatial import cKDTree

    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), faces, process=False)
    _, scan_to_result, _ = trimesh.proximity.closest_point(mesh, scan.points)
    if scan.has_faces:
        _, result_to_scan, _ = trimesh.proximity.closest_point(scan.trimesh(), mesh.vertices)
    else:
        result_to_scan, _ = cKDTree(scan.points).query(mesh.vertices)
    return np.asarray(scan_to_result), np.asarray(result_to_scan)


def scan_report(
    vertices: np.ndarray, faces: np.ndarray, scan: Scan, *, to_mm: float
) -> tuple[dict, np.ndarray]:
    """The two-way distance summary and the per-vertex result -> scan distance in mm ``(V,)``."""
    forward, backward = surface_distances(vertices, faces, scan)
    report = {
        "scan_to_result": distance_summary(forward * to_mm),
        "result_to_scan": distance_summary(backward * to_mm),
        "scan_points": int(len(scan.points)),
        "scan_faces": int(len(scan.faces)) if scan.has_faces else 0,
    }
    return report, backward * to_mm


def write_json(path: str | os.PathLike, report: dict) -> Path:
    """Write a report as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return Path(path)


def residual_figure(
    vertices: np.ndarray,
    faces: np.ndarray,
    residual_mm: np.ndarray,
    path: str | os.PathLike,
    *,
    scan: Scan | None = None,
    max_mm: float = 5.0,
    camera="front",
) -> Path:
    """Scan | result | residual heat map on the result (fixed colour scale in mm)."""
    from deep3dmm.viz.figures import ERROR_CMAP, ERROR_LABEL
    from deep3dmm.viz.render import render_meshes

    mean = float(np.mean(residual_mm))
    meshes, scalars, titles = [], [], []
    if scan is not None and scan.has_faces:
        meshes.append((scan.points, scan.faces))
        scalars.append(None)
        titles.append("scan")
    meshes += [(vertices, faces), (vertices, faces)]
    scalars += [None, residual_mm]
    titles += ["registered", f"to scan, mean {mean:.2f} mm"]
    return render_meshes(
        meshes,
        path,
        grid=(1, len(meshes)),
        scalars=scalars,
        clim=(0.0, float(max_mm)),
        cmap=ERROR_CMAP,
        scalar_bar_title=ERROR_LABEL,
        scalar_bar="right",
        titles=titles,
        camera=camera,
        shared_camera=True,
    )
