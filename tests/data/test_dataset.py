import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from deep3dmm.data import Normalization, RegisteredMeshDataset, make_split
from deep3dmm.errors import ConfigError, DatasetError


def test_items_are_normalised_with_train_statistics(prepared):
    train = RegisteredMeshDataset(prepared, "train")
    test = RegisteredMeshDataset(prepared.path, "test")
    split = make_split(prepared)
    assert np.array_equal(train.indices, split.train)
    assert np.array_equal(test.indices, split.test)
    raw = np.asarray(prepared.vertices, dtype=np.float64)
    mean, std = raw[split.train].mean(0), raw[split.train].std(0)  # independent
    np.testing.assert_allclose(test.normalization.mean, mean, rtol=1e-5, atol=1e-6)
    item = test[3]
    assert item.dtype == torch.float32 and item.shape == (162, 3)
    expected = (raw[split.test[3]] - mean) / std
    np.testing.assert_allclose(item.numpy(), expected, rtol=1e-4, atol=1e-4)
    # statistics differ from those of the test rows (so they were not fit on test)
    assert not np.allclose(raw[split.test].mean(0), mean, atol=1e-4)


def test_tensor_equals_items_and_dataloader(prepared):
    ds = RegisteredMeshDataset(prepared, "val", protocol="identity")
    full = ds.tensor()
    assert full.shape == (len(ds), 162, 3) and full.dtype == torch.float32
    assert torch.equal(full[5], ds[5]) and torch.equal(full[-1], ds[-1])
    batches = torch.cat(list(DataLoader(ds, batch_size=8)))
    assert torch.equal(batches, full)


def test_raw_and_given_normalization(prepared):
    raw = RegisteredMeshDataset(prepared, "all", normalize=False)
    assert len(raw) == len(prepared)
    np.testing.assert_array_equal(raw[7].numpy(), prepared.vertices[7])
    norm = Normalization(np.zeros((162, 3)), np.full((162, 3), 2.0))
    ds = RegisteredMeshDataset(prepared, "test", normalization=norm)
    assert ds.normalization is norm
    np.testing.assert_allclose(ds[0].numpy(), prepared.vertices[ds.indices[0]] / 2)


def test_split_spec_is_checked(prepared, tmp_path):
    from tests.data.conftest import make_prepared

    other = make_prepared(tmp_path / "other", subjects=1, sequences=1, frames=20, seed=5)
    spec = make_split(prepared)
    with pytest.raises(DatasetError, match="split was made for dataset content"):
        RegisteredMeshDataset(other, split_spec=spec)
    with pytest.raises(ConfigError, match="unknown split 'training'"):
        RegisteredMeshDataset(prepared, "training")


def test_pickles_without_copying_the_memory_map(prepared):
    import pickle

    ds = RegisteredMeshDataset(prepared, "test")
    blob = pickle.dumps(ds)
    assert len(blob) < prepared.vertices.nbytes / 4
    assert torch.equal(pickle.loads(blob)[2], ds[2])
