"""Read and write triangle meshes (PLY ascii/binary, OBJ, OFF) without touching vertex order.

Registered meshes depend on vertex order, so reading never merges, drops or
reorders vertices (trimesh with ``process=False, maintain_order=True``).
Quads and larger polygons are fan-triangulated by trimesh, consistently for
every file of one topology.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import trimesh

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import MeshFormatError

__all__ = ["load_geometry", "read_mesh", "write_mesh", "MESH_SUFFIXES"]

MESH_SUFFIXES = (".ply", ".obj", ".off")

_PLY_SIZES = {
    name: size
    for size, names in {
        1: ("char", "uchar", "int8", "uint8"),
        2: ("short", "ushort", "int16", "uint16"),
        4: ("int", "uint", "float", "int32", "uint32", "float32"),
        8: ("double", "float64"),
    }.items()
    for name in names
}


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshFormatError(
            f"unsupported mesh format {suffix or '(no suffix)'!r}",
            path=path,
            fix=f"use one of {', '.join(MESH_SUFFIXES)}",
        )
    return suffix


def load_geometry(path: Path, suffix: str):
    """One ``trimesh`` geometry (mesh or point cloud) from a file, vertex order kept.

    Raises:
        MeshFormatError: missing, empty, unparsable file, or several geometries.
    """
    if not path.is_file():
        raise MeshFormatError("file not found", path=path, fix="check the path")
    if path.stat().st_size == 0:
        raise MeshFormatError("file is empty", path=path, fix="re-export the mesh")
    _check_declared_counts(path, suffix)
    try:
        loaded = trimesh.load(
            path, file_type=suffix[1:], process=False, maintain_order=True, skip_materials=True
        )
    except Exception as exc:  # trimesh raises many types for corrupt input
        raise MeshFormatError(
            f"cannot parse {suffix[1:].upper()} file ({type(exc).__name__}: {exc})",
            path=path,
            fix="the file is corrupt or truncated; re-export it",
        ) from exc
    if isinstance(loaded, trimesh.Scene):
        geometries = list(loaded.geometry.values())
        if len(geometries) != 1:
            raise MeshFormatError(
                f"file holds {len(geometries)} geometries, expected one mesh",
                path=path,
                fix="export a single mesh per file",
            )
        loaded = geometries[0]
    return loaded


def read_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh, keeping the file's vertex order.

    Args:
        path: a ``.ply`` (ascii or binary), ``.obj`` or ``.off`` file.

    Returns:
        ``(vertices, faces)``: vertices ``(V, 3) float32`` in file order and
        faces ``(F, 3) int64``.

    Raises:
        MeshFormatError: missing, empty, corrupt or non-mesh file, no faces,
            face indices out of range, or non-finite coordinates.
    """
    path = Path(path)
    loaded = load_geometry(path, _suffix(path))
    vertices = np.asarray(getattr(loaded, "vertices", np.empty((0, 3))), dtype=np.float64)
    faces = getattr(loaded, "faces", None)
    if vertices.ndim != 2 or vertices.shape[0] == 0:
        raise MeshFormatError("no vertices found", path=path, fix="is this a mesh file?")
    if vertices.shape[1] != 3:
        raise MeshFormatError(
            f"vertices have {vertices.shape[1]} coordinates, expected 3",
            path=path,
            fix="the file is corrupt; re-export it",
        )
    if faces is None or len(faces) == 0:
        raise MeshFormatError(
            "no faces found (a point cloud is not a mesh)",
            path=path,
            fix="export the mesh with its triangles",
        )
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise MeshFormatError(
            f"faces have shape {faces.shape}, expected (F, 3) triangles",
            path=path,
            fix="the file is corrupt; re-export it",
        )
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshFormatError(
            f"face indices out of range [0, {len(vertices)})", path=path, fix="re-export the mesh"
        )
    if not np.isfinite(vertices).all():
        bad = int((~np.isfinite(vertices).all(axis=1)).sum())
        raise MeshFormatError(
            f"{bad} vertices have NaN or infinite coordinates",
            path=path,
            fix="repair or drop this mesh",
        )
    return np.ascontiguousarray(vertices, dtype=np.float32), faces


def _declared_bytes(head: bytes, suffix: str) -> tuple[int, int, str] | None:
    """``(smallest body size the header's counts need, header size, what)``, or None.

    PLY: every element needs at least its scalar properties and list counts (binary) or one
    character and a separator per property (ascii). OFF: a vertex line needs at least 6
    bytes (``0 0 0``), a face line 8 (``3 0 1 2``). None when the header is not recognised
    (the parser reports it).
    """
    text = head.decode("latin-1")
    if suffix == ".ply":
        end = text.find("end_header")
        if not text.startswith("ply") or end < 0:
            return None
        lines = text[:end].splitlines()
        binary = any(line.startswith("format binary") for line in lines)
        need, what, count, per = 0, [], 0, 0
        for line in [*lines, "element end 0"]:
            words = line.split()
            if words[:1] == ["element"] and len(words) == 3:
                need += count * max(per, 1)
                try:
                    count, per = int(words[2]), 0
                except ValueError:
                    return None
                if count < 0:
                    return -1, 0, f"{count} {words[1]}"
                what.append(f"{count} {words[1]}")
            elif words[:1] == ["property"] and len(words) >= 3:
                kind = words[2] if words[1] == "list" else words[1]
                per += _PLY_SIZES.get(kind, 1) if binary else 2
        return need, text.index("\n", end) + 1, ", ".join(what[:-1])
    words = [w for line in text.splitlines()[:3] if not line.startswith("#") for w in line.split()]
    if words[:1] != ["OFF"] or len(words) < 3:
        return None
    try:
        vertices, faces = int(words[1]), int(words[2])
    except ValueError:
        return None
    if min(vertices, faces) < 0:
        return -1, 0, f"{vertices} vertices, {faces} faces"
    return vertices * 6 + faces * 8, 0, f"{vertices} vertices, {faces} faces"


def _check_declared_counts(path: Path, suffix: str) -> None:
    """Refuse a header whose element counts need more bytes than the file holds.

    Parsers allocate by the declared counts: a damaged or hostile header (``element vertex
    10000000000``) must not become a multi-GB allocation or a long parse.

    Raises:
        MeshFormatError: negative counts, or counts the file is too small to hold.
    """
    if suffix not in (".ply", ".off"):
        return
    with open(path, "rb") as handle:
        head = handle.read(65536)
    declared = _declared_bytes(head, suffix)
    if declared is None:
        return
    need, header, what = declared
    size = path.stat().st_size - header
    if need < 0 or need > size:
        raise MeshFormatError(
            f"the header declares {what}, which needs at least {need} bytes, but the file "
            f"holds {size}",
            path=path,
            fix="the file is truncated or its header is damaged; re-export it",
        )


def _ascii_ply(vertices: np.ndarray, faces: np.ndarray) -> str:
    """ASCII PLY text; ``%.9g`` keeps every float32 exact (trimesh rounds to 8 decimals)."""
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    buffer = io.StringIO()
    np.savetxt(buffer, vertices, fmt="%.9g")
    np.savetxt(buffer, np.column_stack([np.full(len(faces), 3), faces]), fmt="%d")
    return header + buffer.getvalue()


def _ascii_obj(vertices: np.ndarray, faces: np.ndarray) -> str:
    """OBJ text (``v`` and one-based ``f`` lines); ``%.9g`` keeps every float32 exact."""
    buffer = io.StringIO()
    np.savetxt(buffer, vertices, fmt="v %.9g %.9g %.9g")
    np.savetxt(buffer, faces + 1, fmt="f %d %d %d")
    return buffer.getvalue()


def _ascii_off(vertices: np.ndarray, faces: np.ndarray) -> str:
    """OFF text; ``%.9g`` keeps every float32 exact."""
    buffer = io.StringIO()
    np.savetxt(buffer, vertices, fmt="%.9g")
    np.savetxt(buffer, np.column_stack([np.full(len(faces), 3), faces]), fmt="%d")
    return f"OFF\n{len(vertices)} {len(faces)} 0\n" + buffer.getvalue()


def write_mesh(
    path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, *, binary: bool = True
) -> None:
    """Write a triangle mesh atomically, exactly preserving float32 vertex values and order.

    Args:
        path: output file; the format follows the suffix (``.ply``, ``.obj``, ``.off``).
        vertices: ``(V, 3)`` coordinates.
        faces: ``(F, 3)`` vertex indices.
        binary: binary (default) or ascii PLY; ignored for OBJ and OFF (text formats).
    """
    path = Path(path)
    suffix = _suffix(path)
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise MeshFormatError(f"vertices must be (V, 3), got {vertices.shape}", path=path)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise MeshFormatError(f"faces must be (F, 3), got {faces.shape}", path=path)
    if suffix == ".ply" and binary:
        mesh = trimesh.Trimesh(vertices=vertices.astype(np.float64), faces=faces, process=False)
        data = trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=False)
    elif suffix == ".ply":
        data = _ascii_ply(vertices, faces)
    elif suffix == ".obj":
        data = _ascii_obj(vertices, faces)
    else:
        data = _ascii_off(vertices, faces)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
