"""Reading scans and landmarks, unit detection, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from deep3dmm.errors import ConfigError, MeshFormatError
from deep3dmm.registration import (
    TemplateLandmarks,
    check_counts,
    read_scan,
    read_scan_landmarks,
    read_template_landmarks,
    scan_unit_scale,
)


def test_read_mesh_point_cloud_and_arrays(tmp_path, sphere):
    vertices, faces = sphere
    trimesh.Trimesh(vertices, faces, process=False).export(tmp_path / "mesh.ply")
    trimesh.PointCloud(vertices).export(tmp_path / "cloud.ply")
    np.save(tmp_path / "cloud.npy", vertices)
    np.savetxt(tmp_path / "cloud.csv", vertices, delimiter=",", header="x,y,z", comments="")
    mesh = read_scan(tmp_path / "mesh.ply")
    assert mesh.has_faces and len(mesh.faces) == len(faces)
    for name in ("cloud.ply", "cloud.npy", "cloud.csv"):
        cloud = read_scan(tmp_path / name)
        assert not cloud.has_faces
        np.testing.assert_allclose(cloud.points, vertices, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.ply", b"", "empty"),
        ("corrupt.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n", "parse"),
        ("scan.stl", b"solid", "unsupported"),
        ("nan.xyz", b"0 0 0\nnan 1 2\n1 1 1\n", "NaN"),
        ("flat.txt", b"1 2\n3 4\n", r"\(P, 3\)"),
    ],
)
def test_bad_scans_raise_typed_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MeshFormatError, match=match):
        read_scan(path)


def test_units_detected_by_size(sphere):
    vertices, _ = sphere
    factor, note = scan_unit_scale(vertices * 1000, vertices, template_unit="m")
    assert factor == pytest.approx(1e-3) and "mm" in note and "1000" in note
    assert scan_unit_scale(vertices * 1.3, vertices) == (1.0, "")
    assert scan_unit_scale(vertices, vertices * 10, template_unit="mm", scan_unit="cm")[0] == 10
    with pytest.raises(ConfigError, match="no unit change explains"):
        scan_unit_scale(vertices * 37, vertices)


def test_template_landmarks_ids_and_barycentric(tmp_path, sphere):
    vertices, faces = sphere
    (tmp_path / "ids.txt").write_text("0\n5\n17\n")
    ids = read_template_landmarks(tmp_path / "ids.txt", num_vertices=162, num_faces=len(faces))
    np.testing.assert_array_equal(ids.positions(vertices, faces), vertices[[0, 5, 17]])
    rows = np.array([[3, 0.2, 0.3, 0.5], [10, 1.0, 0.0, 0.0]])
    np.savetxt(tmp_path / "bary.txt", rows)
    bary = read_template_landmarks(tmp_path / "bary.txt", num_vertices=162, num_faces=len(faces))
    expected = [
        0.2 * vertices[faces[3, 0]] + 0.3 * vertices[faces[3, 1]] + 0.5 * vertices[faces[3, 2]],
        vertices[faces[10, 0]],
    ]
    np.testing.assert_allclose(bary.positions(vertices, faces), expected, atol=1e-12)
    np.testing.assert_allclose(bary.matrix(162, faces) @ vertices, expected, atol=1e-12)
    (tmp_path / "bad.txt").write_text("0\n999\n")
    with pytest.raises(MeshFormatError, match="lie in"):
        read_template_landmarks(tmp_path / "bad.txt", num_vertices=162, num_faces=len(faces))


def test_landmark_count_mismatch_names_both_files(tmp_path):
    np.savetxt(tmp_path / "scan.txt", np.zeros((4, 3)))
    points = read_scan_landmarks(tmp_path / "scan.txt")
    with pytest.raises(ConfigError, match=r"4 scan landmarks in .*scan\.txt.* 3 .*ids\.txt"):
        check_counts(
            points,
            TemplateLandmarks(vertex_ids=np.arange(3)),
            scan_path=tmp_path / "scan.txt",
            template_path="ids.txt",
        )
