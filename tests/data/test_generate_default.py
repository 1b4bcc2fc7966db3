"""The cached default faces dataset (slow: uses the anny head model)."""

import numpy as np
import pytest

from deep3dmm.data import PreparedDataset
from deep3dmm.data.generate import default as default_module
from deep3dmm.data.generate import default_faces_dataset

pytest.importorskip("anny")
pytestmark = pytest.mark.slow


def test_generated_once_then_reused_and_repaired(tmp_path, monkeypatch):
    monkeypatch.setitem(default_module.DEFAULT_FACES, "subjects", 1)
    monkeypatch.setitem(default_module.DEFAULT_FACES, "sequences", 2)
    monkeypatch.setitem(default_module.DEFAULT_FACES, "frames", 3)
    path = default_faces_dataset(tmp_path)
    assert path.parent == tmp_path / "datasets" and path.name.startswith("faces-default-")
    data = PreparedDataset(path)
    assert len(data) == 6 and data.meta["params"]["seed"] == 0
    first = np.asarray(data.vertices).copy()

    def fail(*args, **kwargs):
        raise AssertionError("the cached dataset should have been reused")

    monkeypatch.setattr(default_module, "make_faces", fail)
    assert default_faces_dataset(tmp_path) == path
    # environment variable as the cache root
    monkeypatch.setenv("DEEP3DMM_CACHE", str(tmp_path))
    assert default_faces_dataset() == path

    # a damaged cache is regenerated, not reused
    (path / "meta.json").unlink()
    monkeypatch.undo()
    monkeypatch.setitem(default_module.DEFAULT_FACES, "subjects", 1)
    monkeypatch.setitem(default_module.DEFAULT_FACES, "sequences", 2)
    monkeypatch.setitem(default_module.DEFAULT_FACES, "frames", 3)
    assert default_faces_dataset(tmp_path) == path
    np.testing.assert_array_equal(np.asarray(PreparedDataset(path).vertices), first)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left
