import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh
from scipy.sparse.csgraph import dijkstra, shortest_path

from deep3dmm.errors import ConfigError
from deep3dmm.mesh import ordered_one_ring, shapes, spiral_indices


def neighbours(vertices, faces):
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return [set(n) for n in mesh.vertex_neighbors]


def oriented_faces(faces):
    """Every oriented triangle with its 3 cyclic rotations, as tuples."""
    return {tuple(np.roll(f, r)) for f in faces.tolist() for r in range(3)}


@pytest.fixture(scope="module")
def sphere():
    return shapes.icosphere(2)


def test_first_ring_is_the_one_ring(sphere):
    vertices, faces = sphere
    spirals = spiral_indices(vertices, faces, length=7).numpy()
    assert np.array_equal(spirals[:, 0], np.arange(len(vertices)))
    for v, ring in enumerate(neighbours(vertices, faces)):
        assert set(spirals[v, 1 : 1 + len(ring)]) == ring
        assert len(set(spirals[v, 1 : 1 + len(ring)])) == len(ring)


def test_rotation_is_counter_clockwise_everywhere(sphere):
    vertices, faces = sphere
    ring, valence = ordered_one_ring(faces, len(vertices))
    triangles = oriented_faces(faces)
    for v in range(len(vertices)):
        r = ring[v, : valence[v]]
        assert np.all(ring[v, valence[v] :] == -1)
        for a, b in zip(r, np.roll(r, -1)):
            # Signed volume with the outward direction (the sphere's centre is the origin).
            normal = np.cross(vertices[a] - vertices[v], vertices[b] - vertices[v])
            assert normal @ vertices[v] > 0
            assert (v, a, b) in triangles
    # Flipping every triangle flips the rotation.
    flipped, _ = ordered_one_ring(faces[:, ::-1], len(vertices))
    v = 0
    r, rf = ring[v, : valence[v]], flipped[v, : valence[v]]
    normal = np.cross(vertices[rf[0]] - vertices[v], vertices[rf[1]] - vertices[v])
    assert normal @ vertices[v] < 0 and set(r) == set(rf)


def test_boundary_fan_starts_at_its_free_end():
    vertices, faces = shapes.grid(5, 5)
    ring, valence = ordered_one_ring(faces, len(vertices))
    triangles = oriented_faces(faces)
    for v, expected in enumerate(neighbours(vertices, faces)):
        r = ring[v, : valence[v]]
        assert set(r) == expected and valence[v] == len(expected)
        interior = 0 < v % 5 < 4 and 0 < v // 5 < 4
        pairs = zip(r, np.roll(r, -1)) if interior else zip(r[:-1], r[1:])
        for a, b in pairs:
            assert (v, a, b) in triangles
            edge_a, edge_b = vertices[a] - vertices[v], vertices[b] - vertices[v]
            assert edge_a[0] * edge_b[1] - edge_a[1] * edge_b[0] > 0  # counter-clockwise in xy


def test_second_ring_is_the_distance_two_set():
    vertices, faces = shapes.torus(12, 10)
    spirals = spiral_indices(vertices, faces, length=19).numpy()  # 1 + 6 + 12
    graph = trimesh.Trimesh(vertices, faces, process=False).edges_sparse
    hops = shortest_path(graph, unweighted=True, directed=False)
    for v in range(len(vertices)):
        assert set(spirals[v, 1:7]) == set(np.flatnonzero(hops[v] == 1))
        assert set(spirals[v, 7:19]) == set(np.flatnonzero(hops[v] == 2))


def test_second_ring_continues_the_rotation():
    # On a flat regular patch the second ring must also turn counter-clockwise around v.
    vertices, faces = shapes.grid(9, 9)
    spirals = spiral_indices(vertices, faces, length=19).numpy()
    centre = 4 * 9 + 4
    offsets = vertices[spirals[centre, 7:19]] - vertices[centre]
    angles = np.unwrap(np.arctan2(offsets[:, 1], offsets[:, 0]))
    assert np.all(np.diff(angles) > 0) and angles[-1] - angles[0] < 2 * np.pi


def test_dilation_keeps_every_dth(sphere):
    vertices, faces = sphere
    full = spiral_indices(vertices, faces, length=12)
    dilated = spiral_indices(vertices, faces, length=6, dilation=2)
    assert dilated.shape == (len(vertices), 6)
    assert torch.equal(dilated, full[:, ::2])


def test_short_components_are_padded_with_nearest_vertices():
    # Two triangles far apart and one isolated vertex: 7 vertices, spirals of 9.
    triangle = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    vertices = np.concatenate([triangle, triangle + [10, 0, 0], [[0, 0, 5]]]).astype(np.float32)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    spirals = spiral_indices(vertices, faces, length=9).numpy()
    assert spirals.min() >= 0 and spirals.max() < 7
    assert np.array_equal(spirals[:, 0], np.arange(7))
    assert list(spirals[0, :3]) == [0, 1, 2]  # own ring first, counter-clockwise
    # Then the remaining vertices by distance: the isolated one (5 away), the far triangle.
    assert spirals[0, 3] == 6 and list(spirals[0, 4:7]) == [3, 5, 4]
    # Fewer vertices than the spiral length: repeated cyclically, never out of range.
    assert list(spirals[0, 7:9]) == [0, 1]
    assert spirals[6, 0] == 6 and set(spirals[6, :7]) == set(range(7))


def test_reference_vertex_fixes_the_start():
    vertices, faces = shapes.grid(7, 7)
    reference = 0
    spirals = spiral_indices(vertices, faces, length=7, reference_vertices=[reference]).numpy()
    plain = spiral_indices(vertices, faces, length=7).numpy()
    edges = trimesh.Trimesh(vertices, faces, process=False).edges_unique
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    n = len(vertices)
    graph = sp.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n))
    distance = dijkstra(graph, directed=False, indices=reference)
    ring, valence = ordered_one_ring(faces, n)
    for v in range(1, n):
        r = ring[v, : valence[v]]
        assert distance[spirals[v, 1]] == distance[r].min()
        # Same cyclic order as the plain spiral, only rotated.
        if valence[v] == 6:
            shift = list(plain[v, 1:7]).index(spirals[v, 1])
            assert list(spirals[v, 1:7]) == list(np.roll(plain[v, 1:7], -shift))


def test_bad_arguments():
    vertices, faces = shapes.icosphere(0)
    with pytest.raises(ConfigError, match="spiral length and dilation must be >= 1"):
        spiral_indices(vertices, faces, length=0)
    with pytest.raises(ConfigError, match=r"reference vertices must lie in \[0, 12\)"):
        spiral_indices(vertices, faces, length=5, reference_vertices=[12])


def walked_spiral(ring, valence, v, need):
    """Scalar reference of the spiral walk (the module doc), one vertex at a time.

    Ring ``k + 1``: walk ring ``k`` in order; around each ``w`` take its neighbours not in
    rings ``<= k`` counter-clockwise, starting right after a visited one, skipping those
    an earlier ``w`` brought. Returns the unpadded sequence, at least ``need`` long unless
    the component is exhausted.
    """
    sequence = [v, *ring[v, : valence[v]].tolist()]
    seen, last = set(sequence), sequence[1:]
    while len(sequence) < need and last:
        new = []
        for w in last:
            around = ring[w, : valence[w]].tolist()
            inside = [u in seen for u in around]
            start = next((j for j in range(len(around)) if inside[j - 1] and not inside[j]), 0)
            for t in range(len(around)):
                u = around[(start + t) % len(around)]
                if u not in seen and u not in new:
                    new.append(u)
        sequence += new
        seen |= set(new)
        last = new
    return sequence


@pytest.mark.parametrize(
    ("mesh", "length", "dilation"),
    [("coma", 9, 1), ("coma_subdivided", 9, 1), ("grid", 40, 1), ("torus", 25, 2)],
)
def test_spirals_equal_the_scalar_walk(mesh, length, dilation, request):
    if mesh.startswith("coma"):
        from deep3dmm.mesh import Template

        template = Template.load(request.getfixturevalue("coma_template_path"))
        vertices, faces = template.vertices, template.faces
        if mesh == "coma_subdivided":
            vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    else:
        vertices, faces = shapes.grid(12, 9) if mesh == "grid" else shapes.torus(12, 10)
    n, need = len(vertices), length * dilation
    spirals = spiral_indices(vertices, faces, length=length, dilation=dilation).numpy()
    ring, valence = ordered_one_ring(faces, n)
    rows = range(n) if n < 6000 else np.random.default_rng(0).choice(n, 4000, replace=False)
    checked = 0
    for v in rows:
        walked = walked_spiral(ring, valence, v, need)
        if len(walked) >= need:  # (padding is tested above)
            assert spirals[v].tolist() == walked[:need:dilation], v
            checked += 1
    assert checked >= 0.5 * len(rows)
