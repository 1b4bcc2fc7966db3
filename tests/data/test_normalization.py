import numpy as np
import pytest
import torch

from deep3dmm.data import Normalization
from deep3dmm.errors import DatasetError


def test_fit_matches_numpy_and_chunks_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (101, 7, 3)).astype(np.float32)
    norm = Normalization.fit(x, chunk=8)  # 13 chunks merged
    np.testing.assert_allclose(norm.mean, x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std, x.astype(np.float64).std(0), rtol=1e-5)
    sub = Normalization.fit(x, indices=np.arange(0, 101, 3), chunk=5)
    np.testing.assert_allclose(sub.mean, x[::3].mean(0), rtol=1e-5)
    assert norm.mean.dtype == np.float32 and norm.std.shape == (7, 3)


def test_roundtrip_numpy_and_torch(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (20, 5, 3)).astype(np.float32)
    norm = Normalization.fit(x)
    y = norm.normalize(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-4)
    t = torch.from_numpy(x)
    assert torch.allclose(norm.denormalize(norm.normalize(t)), t, atol=1e-5)
    norm.save(tmp_path / "norm.npz")
    loaded = Normalization.load(tmp_path / "norm.npz")
    np.testing.assert_array_equal(loaded.mean, norm.mean)
    np.testing.assert_array_equal(loaded.std, norm.std)


def test_constant_coordinates_are_floored():
    x = np.ones((4, 3, 3), dtype=np.float32)
    norm = Normalization.fit(x)
    assert np.all(norm.std == np.float32(1e-8))
    assert np.all(norm.normalize(x) == 0) and np.allclose(norm.denormalize(norm.normalize(x)), x)


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="zero meshes"):
        Normalization.fit(np.zeros((5, 3, 3)), indices=[])
    norm = Normalization.fit(np.zeros((2, 3, 3)))
    with pytest.raises(DatasetError, match=r"expected \(\.\.\., 3, 3\) vertices"):
        norm.normalize(np.zeros((4, 3)))
    (tmp_path / "x.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a normalisation file"):
        Normalization.load(tmp_path / "x.npz")
