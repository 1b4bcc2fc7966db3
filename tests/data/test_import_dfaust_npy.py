import json

import h5py
import numpy as np
import pytest

from deep3dmm.data import make_split
from deep3dmm.data.importers import import_dfaust, import_npy
from deep3dmm.errors import DatasetError, TopologyMismatchError
from deep3dmm.mesh import shapes, write_mesh


def sequences(seed=0):
    """{key: (V, 3, T)} arrays of icosphere(1) motions, as in registrations_*.hdf5."""
    v, f = shapes.icosphere(1)
    rng = np.random.default_rng(seed)
    data = {}
    for key, frames in (("50002_jumping_jacks", 3), ("50002_chicken_wings", 4)):
        data[key] = (v[:, :, None] + rng.normal(0, 0.01, (42, 3, frames))).astype(np.float32)
    return data, f


def write_h5(path, data, faces):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle["faces"] = faces.astype(np.int32)
        for key, value in data.items():
            handle[key] = value


def test_dfaust_hdf5_both_files(tmp_path):
    male, faces = sequences(0)
    female = {"50004_punching": sequences(1)[0]["50002_chicken_wings"]}
    write_h5(tmp_path / "registrations_m.hdf5", male, faces)
    write_h5(tmp_path / "registrations_f.hdf5", female, faces)
    ds = import_dfaust(tmp_path, tmp_path / "out")
    order = [("50002", "chicken_wings", 4), ("50002", "jumping_jacks", 3), ("50004", "punching", 4)]
    expected = [(s, q, t) for s, q, n in order for t in range(n)]
    assert [(r.subject, r.sequence, r.frame) for r in ds.index] == expected
    np.testing.assert_array_equal(ds.vertices[4 + 1], male["50002_jumping_jacks"][:, :, 1])
    np.testing.assert_array_equal(ds.template.vertices, male["50002_chicken_wings"][:, :, 0])
    np.testing.assert_array_equal(ds.template.faces, faces)
    assert ds.index[-1].source == "registrations_f.hdf5:50004_punching"
    one = import_dfaust(
        tmp_path / "registrations_m.hdf5", tmp_path / "o2", sequences=["jumping_jacks"], stride=2
    )
    assert [r.frame for r in one.index] == [0, 2]
    np.testing.assert_array_equal(one.vertices[1], male["50002_jumping_jacks"][:, :, 2])
    split = make_split(ds, "identity")
    assert set(ds.subjects[split.test]) == {"50004"}


def test_dfaust_bad_hdf5(tmp_path):
    data, faces = sequences()
    data["50009_running"] = np.zeros((40, 3, 2), np.float32)  # wrong vertex count
    write_h5(tmp_path / "registrations_m.hdf5", data, faces)
    with pytest.raises(TopologyMismatchError, match="'50009_running' has shape \\(40, 3, 2\\)"):
        import_dfaust(tmp_path, tmp_path / "out")
    ds = import_dfaust(tmp_path, tmp_path / "out", skip_bad=True)
    assert len(ds) == 7
    assert ds.meta["skipped"][0]["source"] == "registrations_m.hdf5:50009_running"
    write_h5(tmp_path / "x" / "registrations_f.hdf5", {"badkey": data["50009_running"]}, faces)
    with pytest.raises(DatasetError, match="'badkey' is not <subjectid>_<sequence>"):
        import_dfaust(tmp_path / "x", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no DFAUST data here"):
        import_dfaust(tmp_path / "empty", tmp_path / "out")


def test_dfaust_obj_tree(tmp_path):
    data, faces = sequences()
    for key, value in data.items():
        for t in range(value.shape[-1]):
            write_mesh(tmp_path / "objs" / key / f"{t:05d}.obj", value[:, :, t], faces)
    ds = import_dfaust(tmp_path / "objs", tmp_path / "out", workers=1)
    assert [(r.sequence, r.frame) for r in ds.index][:5] == [
        ("chicken_wings", 0),
        ("chicken_wings", 1),
        ("chicken_wings", 2),
        ("chicken_wings", 3),
        ("jumping_jacks", 0),
    ]
    np.testing.assert_allclose(ds.vertices[4], data["50002_jumping_jacks"][:, :, 0], atol=1e-6)


def write_npy(root, *, n_train=7, n_test=3):
    v, f = shapes.icosphere(1)
    rng = np.random.default_rng(2)
    train = (v * 0.1 + rng.normal(0, 0.001, (n_train, 42, 3))).astype(np.float32)
    test = (v * 0.1 + rng.normal(0, 0.001, (n_test, 42, 3))).astype(np.float32)
    root.mkdir(parents=True)
    np.save(root / "train.npy", train)
    np.save(root / "test.npy", test)
    write_mesh(root.parent / "template" / "template.obj", v * 0.1, f)
    return train, test


def test_npy_predefined_split(tmp_path):
    train, test = write_npy(tmp_path / "preprocessed")
    ds = import_npy(tmp_path / "preprocessed", tmp_path / "out")
    np.testing.assert_array_equal(ds.vertices[:7], train)
    np.testing.assert_array_equal(ds.vertices[7:], test)
    split = make_split(ds, "predefined", val_fraction=0.0)
    assert split.test.tolist() == [7, 8, 9] and split.train.tolist() == list(range(7))
    assert [r.source for r in ds.index[6:8]] == ["train.npy", "test.npy"]
    assert ds.unit == "m"


def test_npy_bad_input(tmp_path):
    train, _ = write_npy(tmp_path / "p")
    train[3, 5, 1] = np.nan
    np.save(tmp_path / "p" / "train.npy", train)
    with pytest.raises(DatasetError, match="train.npy row 3 holds NaN"):
        import_npy(tmp_path / "p", tmp_path / "out")
    ds = import_npy(tmp_path / "p", tmp_path / "out", skip_bad=True)
    assert len(ds) == 9 and ds.meta["skipped"] == [
        {"source": "train.npy[3]", "reason": "NaN or infinite values"}
    ]
    assert make_split(ds, "predefined", val_fraction=0).test.tolist() == [6, 7, 8]
    np.save(tmp_path / "p" / "test.npy", np.zeros((2, 40, 3), np.float32))
    with pytest.raises(DatasetError, match="test.npy has 40 vertices per mesh.*has 42"):
        import_npy(tmp_path / "p", tmp_path / "out")
    (tmp_path / "p" / "test.npy").unlink()
    with pytest.raises(DatasetError, match="missing test.npy"):
        import_npy(tmp_path / "p", tmp_path / "out")
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["num_meshes"] == 9
