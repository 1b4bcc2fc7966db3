import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from deep3dmm.errors import ConfigError, Deep3DMMError
from deep3dmm.mesh import MeshHierarchy, Template, mesh_hash, shapes


def bumpy_sphere(subdivisions=2, seed=0):
    vertices, faces = shapes.icosphere(subdivisions)
    rng = np.random.default_rng(seed)
    vertices = vertices * (1 + 0.15 * rng.random((len(vertices), 1))).astype(np.float32)
    return vertices, faces


def euler(h, level):
    return h.num_vertices[level] - h.adjacency[level].nnz // 2 + h.num_faces[level]


def closest_point_on_triangle(p, a, b, c):
    """Ericson, Real-Time Collision Detection, 5.1.5 (scalar reference)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab @ ap, ac @ ap
    if d1 <= 0 and d2 <= 0:
        return a
    bp = p - b
    d3, d4 = ab @ bp, ac @ bp
    if d3 >= 0 and d4 <= d3:
        return b
    vc = d1 * d4 - d3 * d2
    if vc <= 0 and d1 >= 0 and d3 <= 0:
        return a + d1 / (d1 - d3) * ab
    cp = p - c
    d5, d6 = ab @ cp, ac @ cp
    if d6 >= 0 and d5 <= d6:
        return c
    vb = d5 * d2 - d1 * d6
    if vb <= 0 and d2 >= 0 and d6 <= 0:
        return a + d2 / (d2 - d6) * ac
    va = d3 * d6 - d5 * d4
    if va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        return b + (d4 - d3) / ((d4 - d3) + (d5 - d6)) * (c - b)
    denom = 1 / (va + vb + vc)
    return a + ab * (vb * denom) + ac * (vc * denom)


@pytest.fixture(scope="module")
def sphere_hierarchy():
    return MeshHierarchy.build(bumpy_sphere(), factors=(4, 2), spiral_length=(9, 7, 5))


def test_interface_types_and_shapes(sphere_hierarchy):
    h = sphere_hierarchy
    assert h.num_levels == 3
    assert h.num_vertices == [162, 41, 21]  # ceil(162 / 4), ceil(41 / 2)
    for level in range(h.num_levels):
        n = h.num_vertices[level]
        assert h.vertices[level].dtype == np.float32 and h.vertices[level].shape == (n, 3)
        assert h.faces[level].dtype == np.int64 and h.faces[level].shape[1] == 3
        for matrix in (h.adjacency[level], h.laplacian[level]):
            assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.float32
            assert matrix.shape == (n, n)
        assert h.spirals[level].dtype == torch.long
        assert h.spirals[level].shape == (n, (9, 7, 5)[level])
    for level in range(h.num_levels - 1):
        fine, coarse = h.num_vertices[level], h.num_vertices[level + 1]
        assert sp.isspmatrix_csr(h.down[level]) and h.down[level].shape == (coarse, fine)
        assert sp.isspmatrix_csr(h.up[level]) and h.up[level].shape == (fine, coarse)
        assert h.down[level].dtype == h.up[level].dtype == np.float32
    json.dumps(h.params)
    assert h.params["spiral_length"] == [9, 7, 5] and h.params["spiral_dilation"] == [1, 1, 1]
    assert "num_vertices=[162, 41, 21]" in repr(h)


def test_closed_surface_keeps_euler_characteristic(sphere_hierarchy):
    assert [euler(sphere_hierarchy, level) for level in range(3)] == [2, 2, 2]
    torus = MeshHierarchy.build(shapes.torus(16, 8), factors=(4, 2))
    assert [euler(torus, level) for level in range(3)] == [0, 0, 0]


def test_down_selects_kept_vertices_exactly(sphere_hierarchy):
    h = sphere_hierarchy
    for level in range(h.num_levels - 1):
        d = h.down[level]
        assert np.array_equal(np.diff(d.indptr), np.ones(d.shape[0]))  # one entry per row
        assert np.all(d.data == 1)
        assert len(np.unique(d.indices)) == d.shape[0]  # distinct vertices
        assert np.array_equal(d @ h.vertices[level], h.vertices[level + 1])  # exact


def test_up_is_barycentric_closest_point(sphere_hierarchy):
    h = sphere_hierarchy
    for level in range(h.num_levels - 1):
        up, fine = h.up[level], h.vertices[level].astype(np.float64)
        coarse, faces = h.vertices[level + 1].astype(np.float64), h.faces[level + 1]
        np.testing.assert_allclose(np.asarray(up.sum(axis=1)).ravel(), 1.0, atol=1e-6)
        assert up.data.min() >= -1e-6
        kept = h.down[level].indices
        # Kept vertices map 1:1 onto themselves.
        assert np.array_equal(up[kept].toarray(), np.eye(len(kept), dtype=np.float32))
        # Other vertices land on the closest point of the coarse surface (brute force).
        mapped = up @ coarse
        for vertex in np.setdiff1d(np.arange(len(fine)), kept):
            best = min(
                np.linalg.norm(closest_point_on_triangle(fine[vertex], *coarse[tri]) - fine[vertex])
                for tri in faces
            )
            assert np.linalg.norm(mapped[vertex] - fine[vertex]) <= best + 1e-5
            # At most 3 weights, all from one coarse triangle.
            row = up[vertex].indices
            assert len(row) <= 3
            assert any(set(row) <= set(tri) for tri in faces)


def test_laplacian_and_adjacency_of_every_level(sphere_hierarchy):
    h = sphere_hierarchy
    for level in range(h.num_levels):
        a = h.adjacency[level].toarray()
        assert np.array_equal(a, a.T) and set(np.unique(a)) <= {0.0, 1.0}
        assert np.all(np.diag(a) == 0)
        edges = {tuple(sorted(e)) for f in h.faces[level] for e in ((f[0], f[1]), (f[1], f[2]))}
        edges |= {tuple(sorted((f[2], f[0]))) for f in h.faces[level]}
        assert a.sum() == 2 * len(edges)
        eigenvalues = np.linalg.eigvalsh(h.laplacian[level].toarray().astype(np.float64))
        assert eigenvalues.min() >= -1 - 1e-5 and eigenvalues.max() <= 1 + 1e-5


def test_spirals_in_range_and_start_at_centre(sphere_hierarchy):
    for level, spirals in enumerate(sphere_hierarchy.spirals):
        n = sphere_hierarchy.num_vertices[level]
        assert torch.equal(spirals[:, 0], torch.arange(n))
        assert spirals.min() >= 0 and spirals.max() < n


def test_coma_template_levels(coma_template_path):
    template = Template.load(coma_template_path)
    h = MeshHierarchy.build(template)
    assert h.num_vertices == [5023, 1256, 314, 79, 20]
    # OpenMesh's ModQuadric (psbody qslim would give 597, 139, 33 below level 1).
    assert h.num_faces == [9976, 2464, 601, 141, 26]
    # Face + 2 eyeballs, topology kept by every collapse.
    assert [connected_components(a)[0] for a in h.adjacency] == [3] * 5
    assert len({euler(h, level) for level in range(5)}) == 1
    for level in range(4):
        assert np.array_equal(h.down[level] @ h.vertices[level], h.vertices[level + 1])
        np.testing.assert_allclose(np.asarray(h.up[level].sum(axis=1)).ravel(), 1, atol=1e-6)
    for level, spirals in enumerate(h.spirals):
        assert spirals.shape == (h.num_vertices[level], 9)
        assert spirals.min() >= 0 and spirals.max() < h.num_vertices[level]
    assert np.array_equal(h.faces[0], template.faces)


def test_isolated_vertices_and_components():
    sphere_v, sphere_f = shapes.icosphere(1)
    grid_v, grid_f = shapes.grid(6, 6)
    vertices = np.concatenate([sphere_v, grid_v + 3, [[9, 9, 9], [-9, 0, 0]]]).astype(np.float32)
    faces = np.concatenate([sphere_f, grid_f + len(sphere_v)])
    h = MeshHierarchy.build((vertices, faces), factors=(2, 2), spiral_length=12)
    n = len(vertices)
    assert h.num_vertices == [n, math.ceil(n / 2), math.ceil(math.ceil(n / 2) / 2)]
    for level in range(h.num_levels):
        assert h.spirals[level].min() >= 0 and h.spirals[level].max() < h.num_vertices[level]
        eigenvalues = np.linalg.eigvalsh(h.laplacian[level].toarray().astype(np.float64))
        assert eigenvalues.min() >= -1 - 1e-5 and eigenvalues.max() <= 1 + 1e-5
    # An isolated vertex can never be collapsed: it survives to the coarsest level.
    for point in ([9, 9, 9], [-9, 0, 0]):
        assert (np.abs(h.vertices[-1] - point).sum(axis=1) == 0).any()
    for level in range(h.num_levels - 1):
        assert np.array_equal(h.down[level] @ h.vertices[level], h.vertices[level + 1])
        np.testing.assert_allclose(np.asarray(h.up[level].sum(axis=1)).ravel(), 1, atol=1e-6)


def test_save_load_round_trip(tmp_path, sphere_hierarchy):
    path = tmp_path / "h.npz"
    sphere_hierarchy.save(path)
    loaded = MeshHierarchy.load(path)
    assert loaded.hash == sphere_hierarchy.hash and loaded.params == sphere_hierarchy.params
    for name in ("vertices", "faces"):
        for a, b in zip(getattr(loaded, name), getattr(sphere_hierarchy, name)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    for name in ("down", "up", "adjacency", "laplacian"):
        for a, b in zip(getattr(loaded, name), getattr(sphere_hierarchy, name)):
            assert sp.isspmatrix_csr(a) and a.dtype == np.float32 and (a != b).nnz == 0
    for a, b in zip(loaded.spirals, sphere_hierarchy.spirals):
        assert a.dtype == torch.long and torch.equal(a, b)


def test_save_does_not_append_suffix(tmp_path, sphere_hierarchy):
    sphere_hierarchy.save(tmp_path / "h.hier")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.hier"]
    assert MeshHierarchy.load(tmp_path / "h.hier").hash == sphere_hierarchy.hash


def test_load_errors(tmp_path):
    with pytest.raises(Deep3DMMError, match="hierarchy file not found"):
        MeshHierarchy.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(Deep3DMMError, match="not a readable mesh hierarchy"):
        MeshHierarchy.load(tmp_path / "junk.npz")


def test_cache_reuses_and_invalidates(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEP3DMM_CACHE", str(tmp_path))
    template = Template(*bumpy_sphere())
    calls = []
    original = MeshHierarchy.build.__func__

    def counting_build(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(MeshHierarchy, "build", classmethod(counting_build))
    first = MeshHierarchy.cached(template, factors=(4,))
    cache = tmp_path / "hierarchies"
    assert [p.name for p in cache.iterdir()] == [f"{first.hash}.npz"]
    again = MeshHierarchy.cached(template, factors=(4,))
    assert len(calls) == 1 and again.hash == first.hash
    assert np.array_equal(again.vertices[1], first.vertices[1])
    # Any parameter or template change builds anew, never reusing the stale file.
    changes = [
        (template, {"factors": (2,)}),
        (template, {"factors": (4,), "spiral_length": 7}),
        (template, {"factors": (4,), "spiral_dilation": 2}),
        (template, {"factors": (4,), "reference_vertices": [0]}),
        (Template(template.vertices + 1e-4, template.faces), {"factors": (4,)}),
        (Template(template.vertices, template.faces[:, [0, 2, 1]]), {"factors": (4,)}),
    ]
    hashes = {first.hash}
    for changed_template, params in changes:
        built = MeshHierarchy.cached(changed_template, **params)
        hashes.add(built.hash)
    assert len(calls) == 1 + len(changes) and len(hashes) == 1 + len(changes)
    # Equivalent spellings of the same parameters share one cache file.
    MeshHierarchy.cached(template, factors=[4], spiral_length=[9, 9])
    assert len(calls) == 1 + len(changes)
    # An explicit cache_dir wins; a corrupt cache file is rebuilt.
    other = MeshHierarchy.cached(template, cache_dir=tmp_path / "other", factors=(4,))
    assert (tmp_path / "other" / f"{other.hash}.npz").is_file()
    (cache / f"{first.hash}.npz").write_bytes(b"corrupt")
    rebuilt = MeshHierarchy.cached(template, factors=(4,))
    assert rebuilt.hash == first.hash and MeshHierarchy.load(cache / f"{first.hash}.npz")


def test_hash_uses_mesh_hash_of_template():
    template = Template(*bumpy_sphere())
    h = MeshHierarchy.compute_hash(template, factors=(4,))
    assert len(h) == len(mesh_hash(template.vertices, template.faces)) == 16
    assert h != template.hash


def test_bad_parameters():
    mesh = shapes.icosphere(1)
    with pytest.raises(ConfigError, match="factors must be integers >= 1"):
        MeshHierarchy.build(mesh, factors=(4, 0))
    with pytest.raises(ConfigError, match="spiral_length must be one int >= 1 or 3 of them"):
        MeshHierarchy.build(mesh, factors=(2, 2), spiral_length=(9, 9))
    with pytest.raises(ConfigError, match="spiral_dilation must be one int >= 1"):
        MeshHierarchy.build(mesh, factors=(2,), spiral_dilation=0)
    with pytest.raises(ConfigError, match=r"reference vertices \[999\] outside \[0, 42\)"):
        MeshHierarchy.build(mesh, factors=(2,), reference_vertices=[999])
    with pytest.raises(ConfigError, match="reference_vertices must be None, 'random'"):
        MeshHierarchy.build(mesh, factors=(2,), reference_vertices="nearest")
    with pytest.raises(ConfigError, match="expected a Template or a"):
        MeshHierarchy.build("mesh.obj")
    with pytest.raises(ConfigError, match="unknown hierarchy parameter"):
        MeshHierarchy.cached(mesh, factor=(2,))


def test_random_reference_vertices_depend_on_seed():
    mesh = bumpy_sphere()
    a = MeshHierarchy.build(mesh, factors=(4,), reference_vertices="random", seed=1)
    b = MeshHierarchy.build(mesh, factors=(4,), reference_vertices="random", seed=1)
    c = MeshHierarchy.build(mesh, factors=(4,), reference_vertices="random", seed=2)
    assert torch.equal(a.spirals[0], b.spirals[0]) and a.hash == b.hash
    assert not torch.equal(a.spirals[0], c.spirals[0]) and a.hash != c.hash
    # The ring is only rotated: the same sets of vertices.
    plain = MeshHierarchy.build(mesh, factors=(4,))
    valence = np.diff(plain.adjacency[0].indptr)
    for row, plain_row, k in zip(a.spirals[0], plain.spirals[0], valence):
        assert set(row[: 1 + k].tolist()) == set(plain_row[: 1 + k].tolist())


def test_decimation_that_cannot_reach_its_target_warns(caplog):
    # A closed surface cannot collapse below a tetrahedron.
    with caplog.at_level("WARNING", logger="deep3dmm.mesh.decimation"):
        h = MeshHierarchy.build(shapes.icosphere(0), factors=(12,), spiral_length=9)
    assert h.num_vertices == [12, 4] and h.num_faces == [20, 4]
    assert "stopped at 4 vertices instead of 1" in caplog.text
    assert h.spirals[1].shape == (4, 9) and h.spirals[1].max() < 4


def test_cache_key_covers_versions_and_skips_unused_seed(monkeypatch):
    """The key changes with the decimator or code version; the seed counts only when used."""
    import deep3dmm.mesh.hierarchy as hierarchy

    template = Template(*bumpy_sphere())
    key = MeshHierarchy.compute_hash(template, factors=(4,))
    assert MeshHierarchy.compute_hash(template, factors=(4,), seed=7) == key
    random = MeshHierarchy.compute_hash(template, factors=(4,), reference_vertices="random")
    assert random != MeshHierarchy.compute_hash(
        template, factors=(4,), reference_vertices="random", seed=7
    )
    monkeypatch.setattr(hierarchy, "_decimator_version", lambda: "0.0-other")
    assert MeshHierarchy.compute_hash(template, factors=(4,)) != key
    monkeypatch.undo()
    monkeypatch.setattr(hierarchy, "HIERARCHY_CODE_VERSION", hierarchy.HIERARCHY_CODE_VERSION + 1)
    assert MeshHierarchy.compute_hash(template, factors=(4,)) != key
