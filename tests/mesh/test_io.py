import numpy as np
import pytest

from deep3dmm.errors import MeshFormatError
from deep3dmm.mesh import read_mesh, shapes, write_mesh


def _wide_range_mesh():
    rng = np.random.default_rng(0)
    vertices, faces = shapes.icosphere(2)
    scale = np.array([1e-4, 1.0, 1e3], dtype=np.float32)
    return (vertices * scale + rng.standard_normal(vertices.shape) * scale).astype(
        np.float32
    ), faces


@pytest.mark.parametrize(
    "name,binary", [("m.ply", True), ("m.ply", False), ("m.obj", True), ("m.off", True)]
)
def test_round_trip_is_exact_and_keeps_order(tmp_path, name, binary):
    vertices, faces = _wide_range_mesh()
    path = tmp_path / name
    write_mesh(path, vertices, faces, binary=binary)
    v2, f2 = read_mesh(path)
    assert v2.dtype == np.float32 and f2.dtype == np.int64
    np.testing.assert_array_equal(v2, vertices)
    np.testing.assert_array_equal(f2, faces)


def test_ascii_and_binary_ply_differ_on_disk(tmp_path):
    vertices, faces = shapes.grid(3, 3)
    write_mesh(tmp_path / "a.ply", vertices, faces, binary=False)
    write_mesh(tmp_path / "b.ply", vertices, faces, binary=True)
    assert b"format ascii" in (tmp_path / "a.ply").read_bytes()[:64]
    assert b"binary_little_endian" in (tmp_path / "b.ply").read_bytes()[:64]


def test_reading_does_not_merge_duplicate_vertices(tmp_path):
    # Two triangles that share a position but not a vertex: a processing reader would merge them.
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, -1, 0]], np.float32
    )
    faces = np.array([[0, 1, 2], [3, 5, 4]])
    for suffix in (".ply", ".obj", ".off"):
        write_mesh(tmp_path / f"d{suffix}", vertices, faces)
        v2, f2 = read_mesh(tmp_path / f"d{suffix}")
        np.testing.assert_array_equal(v2, vertices)
        np.testing.assert_array_equal(f2, faces)


def test_unreferenced_vertices_are_kept_in_order(tmp_path):
    vertices, faces = shapes.grid(3, 3)
    vertices = np.concatenate([vertices, [[5, 5, 5]]]).astype(np.float32)
    for suffix in (".ply", ".obj", ".off"):
        write_mesh(tmp_path / f"u{suffix}", vertices, faces)
        np.testing.assert_array_equal(read_mesh(tmp_path / f"u{suffix}")[0], vertices)


QUADS = "f 1 2 3 4\nf 2 5 6 3\n"


def _quad_obj(path, shift):
    rows = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0]]
    path.write_text("".join(f"v {x + shift} {y} {z}\n" for x, y, z in rows) + QUADS)
    return read_mesh(path)


def test_quads_are_triangulated_consistently(tmp_path):
    vertices, faces = _quad_obj(tmp_path / "a.obj", 0.0)
    # Each quad (a, b, c, d) becomes the triangles (a, b, c) and (c, d, a).
    expected = {(0, 1, 2), (2, 3, 0), (1, 4, 5), (5, 2, 1)}
    assert {tuple(f) for f in faces.tolist()} == expected and len(faces) == 4
    # Triangles keep the polygons' orientation (+z here).
    v = vertices[faces]
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2] > 0).all()
    # Every file of the same topology gets exactly the same faces, in the same order.
    np.testing.assert_array_equal(_quad_obj(tmp_path / "b.obj", 0.5)[1], faces)


def test_coma_template_in_file_order(coma_template_path):
    vertices, faces = read_mesh(coma_template_path)
    assert vertices.shape == (5023, 3) and faces.shape == (9976, 3)
    # First vertex and face lines of the file, read independently.
    lines = coma_template_path.read_text().splitlines()
    v_lines = [line.split()[1:4] for line in lines if line.startswith("v ")]
    f_lines = [line.split()[1:4] for line in lines if line.startswith("f ")]
    np.testing.assert_array_equal(vertices, np.array(v_lines, dtype=np.float32))
    np.testing.assert_array_equal(faces, np.array(f_lines, dtype=np.int64) - 1)


# --- bad input -----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(MeshFormatError, match="file not found"):
        read_mesh(tmp_path / "nope.ply")


def test_empty_file(tmp_path):
    (tmp_path / "e.ply").write_bytes(b"")
    with pytest.raises(MeshFormatError, match="empty"):
        read_mesh(tmp_path / "e.ply")


def test_truncated_binary_ply(tmp_path):
    vertices, faces = shapes.icosphere(2)
    write_mesh(tmp_path / "t.ply", vertices, faces)
    data = (tmp_path / "t.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(MeshFormatError, match=r"t\.ply: cannot parse PLY"):
        read_mesh(tmp_path / "t.ply")


def test_corrupt_ply_header(tmp_path):
    (tmp_path / "c.ply").write_bytes(b"ply\nformat banana 1.0\nend_header\n\x00\x01")
    with pytest.raises(MeshFormatError, match="c.ply"):
        read_mesh(tmp_path / "c.ply")


def test_non_mesh_file(tmp_path):
    (tmp_path / "notes.obj").write_text("this is a shopping list\nmilk\neggs\n")
    with pytest.raises(MeshFormatError, match="notes.obj"):
        read_mesh(tmp_path / "notes.obj")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "m.stl").write_text("solid x\nendsolid x\n")
    with pytest.raises(MeshFormatError, match="unsupported mesh format"):
        read_mesh(tmp_path / "m.stl")


def test_point_cloud_has_no_faces(tmp_path):
    (tmp_path / "p.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(MeshFormatError, match="no faces"):
        read_mesh(tmp_path / "p.obj")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_coordinates(tmp_path, value):
    (tmp_path / "n.obj").write_text(f"v 0 0 0\nv 1 {value} 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(MeshFormatError, match="NaN or infinite"):
        read_mesh(tmp_path / "n.obj")


def test_write_rejects_bad_shapes(tmp_path):
    with pytest.raises(MeshFormatError, match=r"vertices must be \(V, 3\)"):
        write_mesh(tmp_path / "x.ply", np.zeros((4, 2)), np.zeros((1, 3), int))


def test_write_is_atomic_on_failure(tmp_path):
    vertices, faces = shapes.grid(3, 3)
    write_mesh(tmp_path / "keep.ply", vertices, faces)
    before = (tmp_path / "keep.ply").read_bytes()
    with pytest.raises(MeshFormatError):
        write_mesh(tmp_path / "keep.ply", vertices[:, :2], faces)
    assert (tmp_path / "keep.ply").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ply"]
