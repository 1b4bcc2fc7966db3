"""Latent distributions, seeded sampling, traversals and their bad inputs (library level)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from deep3dmm.analysis.sampling import (
    LatentGaussian,
    latent_gaussian,
    sample_codes,
    traversal_codes,
)
from deep3dmm.errors import ConfigError


@pytest.fixture
def gaussian():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(3, 3))
    return LatentGaussian.fit(rng.normal(size=(4000, 3)) @ mixing + [1.0, -2.0, 0.5])


def test_fit_and_draw_recover_the_covariance(gaussian):
    codes = sample_codes(gaussian, 50000, seed=1)
    cov = gaussian.basis @ np.diag(gaussian.std**2) @ gaussian.basis.T
    np.testing.assert_allclose(np.cov(codes, rowvar=False), cov, atol=0.08 * np.abs(cov).max())
    np.testing.assert_allclose(codes.mean(0), gaussian.mean, atol=0.05)
    assert np.all(np.diff(gaussian.std) <= 0)  # principal directions, largest first
    half = sample_codes(gaussian, 50000, seed=1, temperature=0.5)
    np.testing.assert_allclose(half - gaussian.mean, 0.5 * (codes - gaussian.mean))


def test_sampling_is_deterministic_for_a_seed(gaussian):
    a, b = sample_codes(gaussian, 16, seed=7), sample_codes(gaussian, 16, seed=7)
    assert np.array_equal(a, b) and not np.allclose(a, sample_codes(gaussian, 16, seed=8))


def test_traversal_follows_one_direction(gaussian):
    t, codes = traversal_codes(gaussian, 1, steps=5)
    np.testing.assert_allclose(t, [-3, -1.5, 0, 1.5, 3])
    steps = np.diff(codes, axis=0)
    direction = gaussian.basis[:, 1] * gaussian.std[1] * 1.5
    np.testing.assert_allclose(steps, np.tile(direction, (4, 1)), atol=1e-12)
    prior = LatentGaussian.standard(4)
    _, axis = traversal_codes(prior, 2, steps=3)
    np.testing.assert_allclose(axis, [[0, 0, -3, 0], [0, 0, 0, 0], [0, 0, 3, 0]])


def test_bad_inputs(gaussian):
    with pytest.raises(ConfigError, match="must be >= 1, got 0"):
        sample_codes(gaussian, 0)
    with pytest.raises(ConfigError, match="temperature must be a finite number >= 0"):
        sample_codes(gaussian, 4, temperature=-1.0)
    with pytest.raises(ConfigError, match="dimension 3 is out of range"):
        traversal_codes(gaussian, 3)
    with pytest.raises(ConfigError, match="dimension -1 is out of range"):
        traversal_codes(gaussian, -1)
    unknown = SimpleNamespace(model=torch.nn.Linear(2, 2), run_dir="r")
    with pytest.raises(ConfigError, match="no latent distribution"):
        latent_gaussian(unknown)


def test_fitted_gaussian_is_stored_per_checkpoint(run):
    """A plain run's Gaussian comes from its training codes, cached by checkpoint digest."""
    from deep3dmm.analysis.sampling import encode_rows

    first = latent_gaussian(run, progress=False)
    assert first.source == "fitted"
    expected = LatentGaussian.fit(encode_rows(run, run.split["train"], progress=False))
    np.testing.assert_allclose(first.mean, expected.mean)
    stored = run.run_dir / "latent_gaussian.npz"
    with np.load(stored) as data:
        assert str(data["checkpoint"]).endswith(run.checkpoint_sha256)
    np.testing.assert_array_equal(latent_gaussian(run, progress=False).std, first.std)
