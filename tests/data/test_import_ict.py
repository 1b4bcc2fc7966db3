import json

import numpy as np
import pytest

from deep3dmm.data import make_split
from deep3dmm.data.importers import import_ict
from deep3dmm.data.importers.ict import expression_weights, load_ict_model
from deep3dmm.errors import DatasetError
from deep3dmm.mesh import shapes, write_mesh


def tiny_model(path):
    v, f = shapes.icosphere(1)
    rng = np.random.default_rng(0)
    model = {
        "neutral": (v * 10).astype(np.float32),
        "id_modes": rng.normal(0, 0.5, (4, 42, 3)).astype(np.float32),
        "expr": rng.normal(0, 1.0, (6, 42, 3)).astype(np.float32),
        "tri": f.astype(np.int32),
        "expr_names": np.array([f"shape{j}" for j in range(6)]),
    }
    np.savez(path, **model)
    return model


def test_ict_follows_the_linear_model(tmp_path):
    model = tiny_model(tmp_path / "ict.npz")
    ds = import_ict(
        tmp_path / "ict.npz",
        tmp_path / "out",
        identities=3,
        sequences=4,
        frames=9,
        active=2,
        seed=1,
    )
    assert len(ds) == 3 * 4 * 9 and ds.unit == "cm"
    x = np.asarray(ds.vertices, np.float64).reshape(3, 4, 9, 42, 3)
    # first and last frames of every sequence are the subject's neutral identity shape
    np.testing.assert_allclose(x[:, :, 0], x[:, :1, 0].repeat(4, 1), atol=1e-4)
    np.testing.assert_allclose(x[:, :, -1], x[:, :, 0], atol=1e-4)
    identity = x[:, 0, 0] - model["neutral"]  # in the span of id_modes
    basis = model["id_modes"].reshape(4, -1).T.astype(np.float64)
    coef, *_ = np.linalg.lstsq(basis, identity.reshape(3, -1).T, rcond=None)
    np.testing.assert_allclose(basis @ coef, identity.reshape(3, -1).T, atol=1e-4)
    # displacements use only the two blendshapes named in the sequence, weights in [0, 1]
    for s, name in enumerate(sorted(set(ds.sequences))):
        used = [int(n[-1]) for n in name.split("_", 1)[1].split("+")]
        assert len(used) == 2
        disp = (x[:, s] - x[:, s, :1]).reshape(-1, 42 * 3).T
        sub = model["expr"][used].reshape(2, -1).T.astype(np.float64)
        w, *_ = np.linalg.lstsq(sub, disp, rcond=None)
        np.testing.assert_allclose(sub @ w, disp, atol=1e-3)
        assert w.min() > -1e-4 and w.max() < 1 + 1e-4 and w.max() > 0.3


def test_ict_is_seeded(tmp_path):
    tiny_model(tmp_path / "ict.npz")
    a = import_ict(tmp_path / "ict.npz", tmp_path / "a", identities=2, sequences=2, frames=3)
    b = import_ict(tmp_path / "ict.npz", tmp_path / "b", identities=2, sequences=2, frames=3)
    c = import_ict(
        tmp_path / "ict.npz", tmp_path / "c", identities=2, sequences=2, frames=3, seed=5
    )
    assert a.meta["content_hash"] == b.meta["content_hash"] != c.meta["content_hash"]


def test_expression_weights_are_smooth_and_sparse():
    rng = np.random.default_rng(0)
    w, chosen = expression_weights(
        rng, identities=2, sequences=3, frames=50, num_expressions=10, active=2
    )
    assert w.shape == (2, 3, 50, 10) and chosen.shape == (3, 2)
    for s in range(3):
        others = np.setdiff1d(np.arange(10), chosen[s])
        assert np.all(w[:, s][..., others] == 0) and np.all(w[:, s][..., chosen[s]].max(1) > 0.3)
    assert np.abs(np.diff(w, axis=2)).max() < 0.2  # no jumps between frames


def test_ict_facex_folder_matches_npz(tmp_path):
    model = tiny_model(tmp_path / "ict.npz")
    folder = tmp_path / "FaceXModel"
    f = model["tri"]
    write_mesh(folder / "generic_neutral_mesh.obj", model["neutral"], f)
    for m, mode in enumerate(model["id_modes"]):
        write_mesh(folder / f"identity{m:03d}.obj", model["neutral"] + mode, f)
    for name, mode in zip(model["expr_names"], model["expr"]):
        write_mesh(folder / f"{name}.obj", model["neutral"] + mode, f)
    (folder / "vertex_indices.json").write_text(
        json.dumps({"expressions": list(map(str, model["expr_names"]))})
    )
    loaded = load_ict_model(folder, workers=1)
    np.testing.assert_allclose(loaded["id_modes"], model["id_modes"], atol=1e-5)
    np.testing.assert_allclose(loaded["expr"], model["expr"], atol=1e-5)
    ds = import_ict(folder, tmp_path / "out", identities=2, sequences=2, frames=3, workers=1)
    ref = import_ict(tmp_path / "ict.npz", tmp_path / "ref", identities=2, sequences=2, frames=3)
    np.testing.assert_allclose(ds.vertices, ref.vertices, atol=1e-4)
    (folder / "identity001.obj").write_text("garbage")
    with pytest.raises(DatasetError, match="identity001.obj"):
        load_ict_model(folder, workers=1)


def test_ict_bad_npz(tmp_path):
    np.savez(tmp_path / "x.npz", neutral=np.zeros((3, 3)))
    with pytest.raises(DatasetError, match="missing keys id_modes, expr, tri, expr_names"):
        import_ict(tmp_path / "x.npz", tmp_path / "out")


def test_ict_shared_face_model(ict_face_path, tmp_path):
    ds = import_ict(ict_face_path, tmp_path / "out", identities=2, sequences=3, frames=4)
    assert ds.vertices.shape == (24, 9409, 3) and ds.template.num_faces == 18460
    extent = np.ptp(ds.vertices[0], axis=0).max()
    assert 10 < extent < 40  # a face in centimetres
    assert make_split(ds, "identity").sizes()["test"] == 12


@pytest.mark.parametrize(
    "names, message",
    [
        (["../outside"], "leaves the folder"),
        (["sub/shape0"], "leaves the folder"),
        (["/etc/passwd"], "leaves the folder"),
        (["..\\x", ".."], "leaves the folder"),
        ("not a list", "no 'expressions' list"),
        ([3], "no 'expressions' list"),
    ],
)
def test_ict_facex_names_cannot_leave_the_folder(tmp_path, names, message):
    """Expression names come from vertex_indices.json: a path out of the folder is refused."""
    v, f = shapes.icosphere(1)
    folder = tmp_path / "FaceXModel"
    write_mesh(folder / "generic_neutral_mesh.obj", v, f)
    write_mesh(tmp_path / "outside.obj", v, f)  # would be read by "../outside"
    (folder / "vertex_indices.json").write_text(json.dumps({"expressions": names}))
    with pytest.raises(DatasetError, match=message):
        load_ict_model(folder, workers=1)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"other": 1}', b"\xff\xfe"])
def test_ict_facex_bad_vertex_indices_is_a_dataset_error(tmp_path, text):
    v, f = shapes.icosphere(1)
    folder = tmp_path / "FaceXModel"
    write_mesh(folder / "generic_neutral_mesh.obj", v, f)
    path = folder / "vertex_indices.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DatasetError, match="vertex_indices.json"):
        load_ict_model(folder, workers=1)
