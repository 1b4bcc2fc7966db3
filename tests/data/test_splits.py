import numpy as np
import pytest

from deep3dmm.data import Split, make_split
from deep3dmm.errors import ConfigError, DatasetError


def _disjoint_cover(split, n):
    parts = np.concatenate([split.train, split.val, split.test])
    assert len(parts) == n and np.array_equal(np.sort(parts), np.arange(n))
    for name in ("train", "val", "test"):
        assert split[name].dtype == np.int64
        assert np.all(np.diff(split[name]) > 0)  # sorted, unique


def test_interpolation_is_the_coma_rule(prepared):
    split = make_split(prepared, "interpolation", val_fraction=0.1)
    expected_test = [i for i in range(len(prepared)) if i % 100 < 10]  # independent loop
    assert split.test.tolist() == expected_test
    _disjoint_cover(split, len(prepared))
    assert len(split.val) == round(0.1 * (len(prepared) - len(expected_test)))
    # the validation slice is spread over the train rows, not one block at the end
    assert split.val.min() < 50 and split.val.max() > 250
    assert split.sizes() == {"train": 243, "val": 27, "test": 30}


def test_extrapolation_holds_out_exactly_that_sequence(prepared):
    split = make_split(prepared, "extrapolation", holdout="seq2")
    expected = [i for i, r in enumerate(prepared.index) if r.sequence == "seq2"]
    assert split.test.tolist() == expected
    assert "seq2" not in set(prepared.sequences[split.train]) | set(prepared.sequences[split.val])
    _disjoint_cover(split, len(prepared))
    assert split.params["holdout"] == "seq2"


def test_identity_defaults_to_last_subject(prepared):
    split = make_split(prepared, "identity")
    assert split.test.tolist() == [i for i, r in enumerate(prepared.index) if r.subject == "s2"]
    other = make_split(prepared, "identity", holdout=["s0", "s1"])
    assert set(prepared.subjects[other.test]) == {"s0", "s1"}
    _disjoint_cover(split, len(prepared))


def test_random_is_seeded(prepared):
    a = make_split(prepared, "random", seed=3, test_fraction=0.2, val_fraction=0.25)
    b = make_split(prepared, "random", seed=3, test_fraction=0.2, val_fraction=0.25)
    c = make_split(prepared, "random", seed=4, test_fraction=0.2, val_fraction=0.25)
    assert a == b and a != c
    assert a.sizes() == {"train": 180, "val": 60, "test": 60}
    _disjoint_cover(a, len(prepared))


def test_deterministic_and_save_load(prepared, tmp_path):
    split = make_split(prepared, "extrapolation", holdout="seq0")
    assert split == make_split(prepared, "extrapolation", holdout="seq0")
    split.save(tmp_path / "split.json")
    loaded = Split.load(tmp_path / "split.json")
    assert loaded == split and loaded.params["dataset"] == prepared.meta["content_hash"]


def test_bad_choices(prepared, tmp_path):
    with pytest.raises(ConfigError, match="unknown split protocol"):
        make_split(prepared, "leave-some-out")
    with pytest.raises(ConfigError, match="needs a holdout sequence"):
        make_split(prepared, "extrapolation")
    with pytest.raises(ConfigError, match="'smile' not in the dataset.*seq0"):
        make_split(prepared, "extrapolation", holdout="smile")
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        make_split(prepared, val_fraction=1.5)
    with pytest.raises(ConfigError, match="no predefined split"):
        make_split(prepared, "predefined")
    with pytest.raises(DatasetError, match="overlap"):
        Split(np.array([1, 2]), np.array([2]), np.array([3]), "random")
    with pytest.raises(DatasetError, match="split part 'test' indexes row 999"):
        Split(np.array([0]), np.array([1]), np.array([999]), "random").check(300)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DatasetError, match="not a split file"):
        Split.load(tmp_path / "bad.json")
