import numpy as np
import pytest
import scipy.sparse as sp

from deep3dmm.errors import TopologyMismatchError
from deep3dmm.mesh import Template, guess_unit, shapes


@pytest.fixture
def sphere():
    return Template(*shapes.icosphere(2), name="sphere")


def test_load_save_round_trip(tmp_path, sphere):
    sphere.save(tmp_path / "s.ply")
    loaded = Template.load(tmp_path / "s.ply", unit="cm")
    assert loaded.name == "s" and loaded.unit == "cm"
    np.testing.assert_array_equal(loaded.vertices, sphere.vertices)
    assert loaded.hash == sphere.hash


def test_hash_changes_with_content(sphere):
    moved = Template(sphere.vertices + 1e-3, sphere.faces)
    assert moved.hash != sphere.hash


def test_edges_and_adjacency_match_euler(sphere):
    # Closed genus-0 triangle mesh: E = 3F/2 and V - E + F = 2.
    assert len(sphere.edges) == 3 * sphere.num_faces // 2
    assert sphere.num_vertices - len(sphere.edges) + sphere.num_faces == 2
    adj = sphere.adjacency
    assert isinstance(adj, sp.csr_matrix) and (adj != adj.T).nnz == 0
    degree = np.asarray(adj.sum(axis=1)).ravel()
    assert set(degree.tolist()) == {5.0, 6.0}  # icosphere valences


def test_vertex_normals_point_outward(sphere):
    normals = sphere.vertex_normals
    radial = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert (np.sum(normals * radial, axis=1) > 0.99).all()


def test_validate_wrong_vertex_count(sphere):
    with pytest.raises(TopologyMismatchError, match=r"expected 162 vertices .* found 100"):
        sphere.validate(np.zeros((100, 3)))


def test_validate_batch_and_nan(sphere):
    sphere.validate(np.zeros((4, 162, 3)))
    bad = np.zeros((162, 3))
    bad[3, 1] = np.nan
    with pytest.raises(TopologyMismatchError, match="NaN"):
        sphere.validate(bad)


def test_check_registered_face_count(sphere):
    with pytest.raises(
        TopologyMismatchError,
        match=r"expected 162 vertices / 320 faces .* found 162 vertices / 319 faces",
    ):
        sphere.check_registered((sphere.vertices, sphere.faces[:-1]), path="x.ply")


def test_check_registered_faces_differ(sphere):
    faces = sphere.faces.copy()
    faces[[0, 1]] = faces[[1, 0]]
    with pytest.raises(TopologyMismatchError, match="2 of 320 faces differ"):
        sphere.check_registered((sphere.vertices, faces))
    sphere.check_registered((sphere.vertices * 2, sphere.faces))


def test_guess_unit():
    head = np.array([[0, 0, 0], [0.15, 0.2, 0.18]])
    assert guess_unit(head) == ["m"]
    assert guess_unit(head * 1000) == ["cm", "mm"]  # a 200 mm head, or a 2 m body in cm
    assert guess_unit(head * 100) == ["cm"]
    assert guess_unit(head * 1e6) == []


def test_bad_unit():
    with pytest.raises(ValueError, match="unit must be one of"):
        Template(*shapes.grid(), unit="inch")
