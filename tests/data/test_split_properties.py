"""Property tests (hypothesis): every split protocol partitions the rows, deterministically."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deep3dmm.data import make_split
from tests.data.conftest import make_prepared


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("p") / "d", frames=8)  # 96 meshes


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    protocol=st.sampled_from(["interpolation", "extrapolation", "identity", "random"]),
    val_fraction=st.floats(0.0, 0.5),
    test_fraction=st.floats(0.05, 0.5),
    seed=st.integers(0, 2**31 - 1),
)
def test_splits_are_disjoint_sorted_covers(dataset, protocol, val_fraction, test_fraction, seed):
    kwargs = dict(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    kwargs["holdout"] = {"extrapolation": "seq1", "identity": "s1"}.get(protocol)
    split = make_split(dataset, protocol, **kwargs)
    parts = np.concatenate([split.train, split.val, split.test])
    assert np.array_equal(np.sort(parts), np.arange(len(dataset)))  # disjoint and covering
    for name in ("train", "val", "test"):
        assert np.all(np.diff(split[name]) > 0)  # sorted, unique
    assert split == make_split(dataset, protocol, **kwargs)  # deterministic
