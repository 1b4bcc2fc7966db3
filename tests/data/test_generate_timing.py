"""Activation curves: 0 at both ends, 1 on the plateau, keys ordered and inside (0, 1)."""

import numpy as np
import pytest

from deep3dmm.data.generate.timing import activation, sample_key_times


def test_activation_by_hand():
    t = np.linspace(0.0, 1.0, 11)
    w = activation(t, np.array([0.1, 0.3, 0.5, 0.9]))
    np.testing.assert_allclose(w[[0, 1, 10]], 0.0)
    np.testing.assert_allclose(w[3:6], 1.0)  # plateau 0.3 .. 0.5
    assert w[2] == pytest.approx(0.5)  # half way up: smoothstep(0.5) = 0.5
    assert w[7] == pytest.approx(0.5)  # half way down (0.7 between 0.5 and 0.9)


def test_sampled_keys_are_ordered_and_end_before_the_last_frame():
    keys = sample_key_times(np.random.default_rng(0), (50, 7), last=0.9)
    assert keys.shape == (50, 7, 4)
    assert np.all(np.diff(keys, axis=-1) >= 0) and np.all(keys[..., 0] > 0)
    assert keys[..., 3].max() <= 0.9 + 1e-12
    curves = activation(np.linspace(0, 1, 10), keys)  # (50, 7, 10)
    np.testing.assert_allclose(curves[..., [0, -1]], 0.0)
    assert curves.max() == 1.0
    # units of one sequence peak at different times: not one envelope scaled
    assert np.ptp(curves.argmax(axis=-1)) >= 3
