"""PCAModel and fit_pca against an independent numpy SVD."""

import numpy as np
import pytest
import torch

from deep3dmm.errors import ConfigError, TopologyMismatchError
from deep3dmm.nn import PCAModel, build_preset, fit_pca, model_from_config


def curved_meshes(n=80, vertices=30, seed=0):
    """Four modes with non-linear coefficients (sin, cos, products) plus noise, in metres."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.1, (vertices, 3))
    t = rng.uniform(-1.5, 1.5, (n, 3))
    modes = rng.normal(0, 0.01, (4, vertices, 3))
    meshes = (base + np.sin(t[:, 0])[:, None, None] * modes[0]
              + np.cos(2 * t[:, 1])[:, None, None] * modes[1]
              + (t[:, 0] * t[:, 2])[:, None, None] * modes[2]
              + t[:, 2, None, None] ** 3 * modes[3]
              + rng.normal(0, 1e-4, (n, vertices, 3)))  # fmt: skip
    return meshes.astype(np.float32)


def numpy_pca(train, latent):
    """The reference: mean and top right singular vectors of the centred flattened meshes."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:latent], s[:latent] ** 2 / len(train)


def model_reconstruct(model, meshes, offset, scale):
    x = torch.from_numpy((meshes - offset) / scale).double()  # normalised
    return model.double()(x).numpy() * scale + offset


@pytest.mark.parametrize("max_bytes", [2**30, 0], ids=["exact", "randomized"])
def test_fit_matches_numpy_svd(max_bytes):
    meshes = curved_meshes()
    rows = np.arange(0, 80, 2)[:36]  # a train split: every other mesh
    train = meshes[rows]
    offset = train.mean(axis=0)
    scale = train.std(axis=0) + 1e-3  # any per-coordinate scale: the fit is in the metric space
    latent = 4  # the spectrum has a clear gap after 4 (then the noise floor)
    model, info = fit_pca(meshes, rows, latent, scale=scale, offset=offset, max_bytes=max_bytes)
    assert info["method"] == ("exact" if max_bytes else "randomized")
    mean, vt, variance = numpy_pca(train, latent)
    # Same subspace: the projectors agree (signs and rotations within ties are free).
    components = model.components.double().numpy()
    np.testing.assert_allclose(components @ components.T, np.eye(latent), atol=1e-6)
    np.testing.assert_allclose(components.T @ components, vt.T @ vt, atol=2e-5)
    np.testing.assert_allclose(model.variance.numpy(), variance, rtol=1e-4)
    # Reconstructions of held-out meshes equal the numpy projection, and so do the errors.
    test = meshes[1::2]
    expected = mean + (test.reshape(len(test), -1) - mean) @ vt.T @ vt
    got = model_reconstruct(model, test, offset, scale)
    np.testing.assert_allclose(got.reshape(len(test), -1), expected, atol=1e-6)
    err_ref = np.linalg.norm(expected.reshape(test.shape) - test, axis=-1).mean()
    err = np.linalg.norm(got - test, axis=-1).mean()
    assert err == pytest.approx(err_ref, rel=1e-5) and err > 1e-5  # the noise is not reconstructed
    ratio = np.asarray(info["explained_variance_ratio"])
    assert np.all(np.diff(ratio) <= 0) and 0.99 < ratio.sum() < 1.0


def test_full_rank_reconstructs_exactly_and_signs_are_fixed():
    meshes = curved_meshes(n=12, vertices=5)
    rows = np.arange(12)
    offset, scale = meshes.mean(0), np.ones((5, 3))
    model, _ = fit_pca(meshes, rows, 12, scale=scale, offset=offset)
    np.testing.assert_allclose(model_reconstruct(model, meshes, offset, scale), meshes,
                               atol=1e-6)  # fmt: skip
    c = model.components.numpy()
    assert np.all(c[np.arange(len(c)), np.abs(c).argmax(1)] > 0)
    again, _ = fit_pca(meshes, rows, 12, scale=scale, offset=offset)
    torch.testing.assert_close(again.components.double(), model.components.double())


def test_encode_decode_shapes_state_dict_and_errors():
    meshes = curved_meshes(n=20, vertices=7)
    model, _ = fit_pca(meshes, np.arange(20), 3, scale=np.ones((7, 3)), offset=meshes.mean(0))
    x = torch.from_numpy(meshes[:4] - meshes.mean(0))
    z = model.encode(x)
    assert z.shape == (4, 3) and model.decode(z).shape == (4, 7, 3)
    empty = model_from_config(model.config, hierarchy=None)
    assert isinstance(empty, PCAModel) and "latent=3" in repr(empty)
    empty.load_state_dict(model.state_dict())
    torch.testing.assert_close(empty(x), model(x))
    assert set(model.state_dict()) == {"mean", "scale", "components", "variance"}
    with pytest.raises(TopologyMismatchError, match=r"\(B, 7, 3\)"):
        model.encode(torch.zeros(2, 8, 3))
    with pytest.raises(ConfigError, match=r"codes \(B, 3\)"):
        model.decode(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="needs at least 25 training meshes; the train split "
                       "has 20"):  # fmt: skip
        fit_pca(meshes, np.arange(20), 25, scale=np.ones((7, 3)), offset=meshes.mean(0))


def test_build_preset_pca_takes_only_latent():
    class Hierarchy:
        num_vertices = [10, 3]

    assert build_preset("pca", Hierarchy(), latent=5).components.shape == (5, 30)
    with pytest.raises(ConfigError, match="do not apply to the pca preset"):
        build_preset("pca", Hierarchy(), latent=5, conv="spiral")


def test_tall_data_uses_the_covariance_and_matches_numpy():
    meshes = curved_meshes(n=60, vertices=3)  # N = 60 > 3V = 9
    offset, scale = meshes.mean(0), np.ones((3, 3))
    model, _ = fit_pca(meshes, np.arange(60), 5, scale=scale, offset=offset)
    mean, vt, variance = numpy_pca(meshes, 5)
    np.testing.assert_allclose(model.variance.numpy(), variance, rtol=1e-5)
    expected = mean + (meshes.reshape(60, -1) - mean) @ vt.T @ vt
    got = model_reconstruct(model, meshes, offset, scale).reshape(60, -1)
    np.testing.assert_allclose(got, expected, atol=1e-6)
