import numpy as np
import pytest

from deep3dmm.mesh import mesh_info, shapes


@pytest.mark.parametrize("s", [0, 1, 3])
def test_icosphere_counts(s):
    vertices, faces = shapes.icosphere(s)
    info = mesh_info(vertices, faces)
    assert info.num_vertices == 10 * 4**s + 2
    assert info.euler_characteristic == 2 and info.boundary_loops == 0 and info.components == 1


def test_grid_has_one_boundary_loop():
    vertices, faces = shapes.grid(5, 7)
    info = mesh_info(vertices, faces)
    assert (info.num_vertices, info.num_faces) == (35, 2 * 4 * 6)
    assert info.boundary_loops == 1 and info.euler_characteristic == 1 and info.edge_manifold
    # Counter-clockwise triangles in the z = 0 plane: normals +z.
    v = vertices[faces]
    normal_z = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
    assert (normal_z > 0).all()


def test_torus_is_genus_one():
    info = mesh_info(*shapes.torus(12, 6))
    assert info.num_vertices == 72 and info.euler_characteristic == 0
    assert info.boundary_loops == 0 and info.components == 1 and info.edge_manifold


def test_info_counts_components_and_nonmanifold_edges():
    v1, f1 = shapes.icosphere(1)
    v2, f2 = shapes.grid(3, 3)
    vertices = np.concatenate([v1, v2 + 5])
    faces = np.concatenate([f1, f2 + len(v1)])
    info = mesh_info(vertices, faces)
    assert info.components == 2 and info.boundary_loops == 1
    # A third triangle on an existing edge makes that edge non-manifold.
    extra = np.concatenate([vertices, [[9, 9, 9]]])
    fan = np.concatenate([faces, [[f1[0, 0], f1[0, 1], len(vertices)]]])
    assert mesh_info(extra, fan).nonmanifold_edges == 1


def test_info_on_coma_template(coma_template_path):
    from deep3dmm.mesh import read_mesh

    info = mesh_info(*read_mesh(coma_template_path))
    assert (info.num_vertices, info.num_faces) == (5023, 9976)
    assert info.unit_guess == ["m"] and info.edge_manifold
