"""closest_point (k-d tree candidates) against trimesh.proximity.closest_point and brute force."""

import numpy as np
import pytest
import scipy.sparse as sp
import trimesh

from deep3dmm.mesh import Template, shapes
from deep3dmm.mesh.closest_point import closest_point
from deep3dmm.mesh.decimation import quadric_decimation
from deep3dmm.mesh.upsampling import up_matrix


def ambiguous(vertices, faces, points):
    """Rows where the answer is decided by round-off (brute force over every triangle).

    trimesh keeps the closest of its best two triangles unless their squared distances
    differ by less than ``tol.merge``; then the normal most aligned with ``p - closest``
    wins. When the two normals' angles are equal too (or two different closest points
    are at exactly the same distance) either answer is trimesh's answer.
    """
    triangles = vertices[faces]
    normals = trimesh.Trimesh(vertices, faces, process=False).face_normals
    rows = []
    for row, p in enumerate(np.asarray(points).reshape(-1, 3)):
        close = trimesh.triangles.closest_point(triangles, np.repeat(p[None], len(faces), 0))
        squared = ((p - close) ** 2).sum(axis=1)
        best = np.argsort(squared, kind="stable")[:2]
        if np.ptp(squared[best]) < trimesh.tol.merge and (squared[best] > trimesh.tol.merge).all():
            direction = (p - close[best]) / np.sqrt(squared[best])[:, None]
            dots = (normals[best] * direction).sum(axis=1)
            if abs(dots[0] - dots[1]) < 1e-9:
                rows.append(row)
        elif np.ptp(squared[best]) <= 1e-15 * max(squared[best].max(), 1e-300):
            if np.abs(close[best[0]] - close[best[1]]).max() > 1e-12:
                rows.append(row)
    return np.asarray(rows, dtype=np.int64)


def random_mesh(seed):
    """A noisy sphere (irregular triangles, unit scale) and query points around it."""
    rng = np.random.default_rng(seed)
    vertices, faces = shapes.icosphere(2)
    vertices = vertices.astype(np.float64) * (1 + 0.3 * rng.random((len(vertices), 1)))
    vertices = vertices + 0.05 * rng.standard_normal(vertices.shape)
    points = rng.standard_normal((600, 3)) * rng.choice([0.3, 1.0, 3.0], size=(600, 1))
    return vertices, faces, points


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_trimesh_on_random_meshes(seed):
    vertices, faces, points = random_mesh(seed)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    expected, expected_distance, _ = trimesh.proximity.closest_point(mesh, points)
    closest, distance, triangle = closest_point(vertices, faces, points)
    differ = np.flatnonzero(np.abs(closest - expected).max(axis=1) > 1e-9)
    assert len(differ) <= 3
    assert len(ambiguous(vertices, faces, points[differ])) == len(differ)
    free = np.setdiff1d(np.arange(len(points)), differ)
    np.testing.assert_allclose(closest[free], expected[free], atol=1e-9)
    np.testing.assert_allclose(distance[free], expected_distance[free], atol=1e-12)
    # The returned triangle holds the returned point.
    on_triangle = trimesh.triangles.closest_point(vertices[faces[triangle]], closest)
    np.testing.assert_allclose(on_triangle, closest, atol=1e-12)


def test_triangle_soup_with_big_and_tiny_triangles():
    """Radii spanning four decades: the radius-scaled cover must still find the closest."""
    rng = np.random.default_rng(3)
    centres = rng.random((300, 1, 3)) * 10
    sizes = 10.0 ** rng.uniform(-3, 1, size=(300, 1, 1))
    triangles = centres + sizes * rng.standard_normal((300, 3, 3))
    vertices, faces = triangles.reshape(-1, 3), np.arange(900).reshape(-1, 3)
    points = rng.random((400, 3)) * 10
    closest, distance, _ = closest_point(vertices, faces, points)
    every = np.stack(
        [trimesh.triangles.closest_point(triangles, np.repeat(p[None], 300, 0)) for p in points]
    )  # (400, 300, 3)
    brute = np.linalg.norm(every - points[:, None], axis=2).min(axis=1)
    np.testing.assert_allclose(distance, brute, rtol=1e-12, atol=1e-12)


def test_points_on_the_surface_and_one_triangle():
    vertices, faces = shapes.icosphere(1)
    vertices = vertices.astype(np.float64)
    closest, distance, triangle = closest_point(vertices, faces, vertices[faces].mean(axis=1))
    assert np.array_equal(triangle, np.arange(len(faces)))
    np.testing.assert_allclose(distance, 0, atol=1e-12)
    one = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    closest, distance, triangle = closest_point(one, [[0, 1, 2]], [[2.0, 2, 1], [0.2, 0.2, -1]])
    np.testing.assert_allclose(closest, [[0.5, 0.5, 0], [0.2, 0.2, 0]])
    np.testing.assert_allclose(distance, [np.sqrt(5.5), 1.0])
    assert closest_point(one, [[0, 1, 2]], np.zeros((0, 3)))[0].shape == (0, 3)


def trimesh_up_matrix(fine, coarse, coarse_faces, kept):
    """The former up_matrix (trimesh.proximity.closest_point): the reference."""
    is_kept = np.zeros(len(fine), dtype=bool)
    is_kept[kept] = True
    query = np.flatnonzero(~is_kept)
    mesh = trimesh.Trimesh(coarse, coarse_faces, process=False, validate=False)
    closest, _, triangle = trimesh.proximity.closest_point(mesh, fine[query])
    corners = coarse_faces[triangle]
    weights = np.clip(trimesh.triangles.points_to_barycentric(coarse[corners], closest), 0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    rows = np.concatenate([kept, np.repeat(query, 3)])
    cols = np.concatenate([np.arange(len(coarse)), corners.ravel()])
    data = np.concatenate([np.ones(len(coarse)), weights.ravel()])
    return sp.csr_matrix((data, (rows, cols)), shape=(len(fine), len(coarse))), query


@pytest.mark.parametrize("seed", [0, 1])
def test_up_matrix_equals_trimesh_on_random_meshes(seed):
    vertices, faces, _ = random_mesh(seed)
    (kept,), (coarse_faces,) = quadric_decimation(vertices, faces, [4])
    coarse = vertices[kept]
    expected, _ = trimesh_up_matrix(vertices, coarse, coarse_faces, kept)
    up = up_matrix(vertices, coarse, coarse_faces, kept)
    difference = np.abs(up - expected).max(axis=1).toarray().ravel()
    differ = np.flatnonzero(difference > 1e-6)
    assert len(differ) == len(ambiguous(coarse, coarse_faces, vertices[differ])) <= 2


def test_up_matrix_equals_trimesh_on_the_coma_template(coma_template_path):
    template = Template.load(coma_template_path)
    fine, faces = template.vertices.astype(np.float64), template.faces
    (kept,), (coarse_faces,) = quadric_decimation(fine, faces, [4])
    coarse = fine[kept]
    expected, _ = trimesh_up_matrix(fine, coarse, coarse_faces, kept)
    up = up_matrix(fine, coarse, coarse_faces, kept)
    difference = np.abs(up - expected).max(axis=1).toarray().ravel()  # (5023,)
    differ = np.flatnonzero(difference > 1e-6)
    # The few rows that differ are decided by round-off in both (brute force).
    assert len(differ) <= 5
    assert len(ambiguous(coarse, coarse_faces, fine[differ])) == len(differ)
    mapped, reference = up @ coarse, expected @ coarse
    np.testing.assert_allclose(
        np.linalg.norm(mapped - fine, axis=1)[differ],
        np.linalg.norm(reference - fine, axis=1)[differ],
        atol=1e-7,
    )


def test_up_matrix_maps_onto_degenerate_triangles_exactly():
    """A fine vertex on a zero-area coarse triangle maps to itself, not to a corner."""
    coarse = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 5, 0], [5, 5, 5], [0.0, 0, 0]])
    faces = np.array([[0, 1, 2], [3, 4, 3], [5, 5, 5]])  # collinear, two corners equal, a point
    fine = np.concatenate([coarse, [[1.4, 0, 0], [2.5, 5, 2.5], [0.3, 0, -1e-9]]])
    up = up_matrix(fine, coarse, faces, np.arange(len(coarse))).toarray()
    np.testing.assert_allclose(up.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(
        up[6:] @ coarse, [[1.4, 0, 0], [2.5, 5, 2.5], [0.3, 0, 0]], atol=1e-6
    )
    assert (np.count_nonzero(up[6:], axis=1) == 2).all()
