"""Registration with a statistical shape prior: PCA, model fit, no tangential sliding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deep3dmm.cli import main
from deep3dmm.errors import ConfigError
from deep3dmm.mesh import Template, shapes, write_mesh
from deep3dmm.registration import Scan, Similarity, TemplateLandmarks, register_scan
from deep3dmm.registration.shape_prior import ShapePrior, point_normals, vertex_normals
from deep3dmm.registration.synthetic import random_rotation

CENTRES = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0.6, 0.6, 0.5], [0, -0.7, 0.7]], np.float64
)
CENTRES /= np.linalg.norm(CENTRES, axis=1, keepdims=True)


def family(unit: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """A linear family of smooth shapes on the unit sphere ``(P, 3)`` (radius 0.1 m).

    Coefficient 0 stretches along x / squashes z, 1..6 raise Gaussian bumps. The same
    function evaluated on another sphere tessellation is the same surface with other
    vertices: the ground truth of a scan.
    """
    fields = [unit * np.array([0.5, 0.0, -0.4])]
    bumps = np.exp(-((unit[:, None] - CENTRES[None]) ** 2).sum(-1) / 0.15)  # (P, 6)
    fields += [unit * (0.3 * bumps[:, k])[:, None] for k in range(len(CENTRES))]
    return 0.1 * (unit + np.tensordot(coefficients, np.stack(fields), axes=1))


@pytest.fixture(scope="module")
def model_data():
    vertices, faces = shapes.icosphere(3, radius=1.0)  # 642 vertices, the template topology
    rng = np.random.default_rng(0)
    train = np.stack([family(vertices, c) for c in rng.uniform(-1, 1, (40, 7))])
    held_out = rng.uniform(-1, 1, 7)
    return vertices, faces, train, held_out


def test_pca_matches_an_svd_reference(model_data):
    _, _, train, _ = model_data
    prior = ShapePrior.from_meshes(train, components=20)
    assert prior.components == 7  # the family has 7 directions: the rest are dropped
    flat = (train - train.mean(0)).reshape(len(train), -1)
    singular = np.linalg.svd(flat, compute_uv=False)
    norms = np.linalg.norm(prior.basis.reshape(prior.components, -1), axis=1)
    np.testing.assert_allclose(norms, singular[:7] / np.sqrt(len(train) - 1), rtol=1e-6)
    gram = prior.basis.reshape(7, -1) @ prior.basis.reshape(7, -1).T
    np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-9 * gram.max())
    # every training mesh lies in the span
    codes = np.linalg.lstsq(prior.basis.reshape(7, -1).T, flat.T, rcond=None)[0]
    np.testing.assert_allclose(prior.basis.reshape(7, -1).T @ codes, flat.T, atol=1e-9, rtol=0)


def test_point_cloud_normals_match_the_mesh_normals():
    vertices, faces = shapes.icosphere(4, radius=0.1)
    mesh_n = vertex_normals(vertices, faces)
    cloud_n = point_normals(vertices, None)
    assert np.abs(np.einsum("pc,pc->p", mesh_n, cloud_n)).min() > 0.99
    np.testing.assert_allclose(mesh_n, vertices / 0.1, atol=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mesh", "cloud"])
def test_prior_registration_keeps_correspondence(model_data, kind):
    """Remeshed, noisy, moved scan of a held-out shape: the prior beats NICP's sliding."""
    vertices, faces, train, held_out = model_data
    prior = ShapePrior.from_meshes(train)
    truth = family(vertices, held_out)
    fine_v, fine_f = shapes.icosphere(4, radius=1.0)  # 2562 other vertices
    rng = np.random.default_rng(1)
    motion = Similarity(1.0, random_rotation(rng), np.array([0.03, -0.02, 0.01]))
    points = family(fine_v, held_out) + rng.normal(0, 5e-4, fine_v.shape)
    scan = Scan(motion.apply(points), fine_f if kind == "mesh" else None)
    ids = np.arange(0, len(vertices), 40)
    lmk = TemplateLandmarks(vertex_ids=ids)
    targets = motion.apply(truth[ids] + rng.normal(0, 5e-4, (len(ids), 3)))
    template = family(vertices, np.zeros(7))
    errors = {}
    for name, kwargs in (
        ("prior", {"shape_prior": prior, "deform": False}),
        ("prior+deform", {"shape_prior": prior}),
        *([("nicp", {})] if kind == "mesh" else []),
    ):
        result = register_scan(
            template, faces, scan, template_landmarks=lmk, scan_landmarks=targets, **kwargs
        )
        errors[name] = np.linalg.norm(result.vertices - motion.apply(truth), axis=1).mean() * 1e3
    # the prior alone recovers the held-out shape to well under the 0.5 mm noise
    assert errors["prior"] < 0.35, errors
    assert errors["prior+deform"] < 0.8, errors
    if kind == "mesh":
        assert errors["prior"] < errors["nicp"], errors


def test_prior_vertex_count_mismatch_is_a_config_error(model_data):
    vertices, faces, train, _ = model_data
    prior = ShapePrior.from_meshes(train[:, :100])
    with pytest.raises(ConfigError, match="100 vertices"):
        register_scan(vertices * 0.1, faces, Scan(vertices * 0.1, faces), shape_prior=prior)


def test_register_cli_with_a_prior_dataset(tmp_path, model_data):
    from deep3dmm.data.prepared import IndexRow, PreparedDatasetWriter

    vertices, faces, train, held_out = model_data
    template = Template(family(vertices, np.zeros(7)), faces, name="blob", unit="m")
    with PreparedDatasetWriter(tmp_path / "data", template, len(train), source="t", unit="m") as w:
        for i, mesh in enumerate(train):
            w.add(mesh[None].astype(np.float32), [IndexRow(f"s{i}", "a", 0, f"{i}")])
    fine_v, fine_f = shapes.icosphere(4, radius=1.0)
    write_mesh(tmp_path / "scan.ply", family(fine_v, held_out), fine_f)
    out = tmp_path / "reg.ply"
    args = ["register", str(tmp_path / "scan.ply"), "--template", str(tmp_path / "data")]
    code = main([*args, "--out", str(out), "--prior", str(tmp_path / "data"), "--no-figure"])
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert any("statistical shape model" in note for note in report["notes"])
    assert report["result_to_scan"]["mean_mm"] < 0.5
    # a prior that is not a dataset or run: exit 2, nothing written
    bad = tmp_path / "bad.ply"
    assert main([*args, "--out", str(bad), "--prior", str(tmp_path)]) == 2
    assert not bad.exists()
