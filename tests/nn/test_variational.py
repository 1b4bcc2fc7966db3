"""The VAE option: KL against torch.distributions, reparameterisation, config checks."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from deep3dmm.errors import ConfigError
from deep3dmm.nn import MeshAutoencoder, ModelConfig, gaussian_kl, kl_weight, reparameterize


def test_kl_matches_torch_distributions():
    """The closed form equals torch.distributions' KL(N(mu, sigma) || N(0, 1)), summed."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 7, generator=gen, dtype=torch.float64) * 2
    logvar = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = kl_divergence(q, p).sum(dim=1)  # (B,)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected, rtol=1e-12, atol=1e-12)
    assert torch.all(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)) == 0)  # q == p


def test_reparameterize_moments_and_determinism():
    mu, logvar = torch.full((20000, 2), 1.5), torch.log(torch.full((20000, 2), 0.25))
    a = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    b = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert abs(float(a.mean()) - 1.5) < 0.02 and abs(float(a.std()) - 0.5) < 0.02


def test_kl_weight_linear_warmup():
    assert [kl_weight(0.1, 4, e) for e in range(6)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]
    )
    assert kl_weight(0.1, 0, 0) == 0.1


def test_variational_model_heads_and_modes(small_hierarchy):
    torch.manual_seed(0)
    config = ModelConfig(pool="fixed", channels=(8, 8), latent=4, variational=True)
    model = MeshAutoencoder(small_hierarchy, config)
    plain = MeshAutoencoder(small_hierarchy, config.replace(variational=False))
    extra = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == model.to_latent.weight.numel() + 4  # one more linear head
    x = torch.randn(3, 162, 3)
    mu, logvar = model.encode_distribution(x)
    assert torch.equal(mu, model.encode(x)) and logvar.shape == (3, 4)
    model.eval()  # evaluation decodes the mean code
    out, kl = model(x, return_kl=True)
    torch.testing.assert_close(out, model.decode(mu))
    torch.testing.assert_close(kl, gaussian_kl(mu, logvar))
    model.train()  # training decodes mu + sigma * eps, eps from the generator given
    a = model(x, generator=torch.Generator().manual_seed(1))
    b = model(x, generator=torch.Generator().manual_seed(1))
    c = model(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    rebuilt = MeshAutoencoder.from_config(model.config, small_hierarchy)
    rebuilt.load_state_dict(model.state_dict())  # to_logvar travels in the checkpoint
    assert rebuilt.options.variational and "variational=True" in repr(rebuilt)
    with pytest.raises(ConfigError, match="needs a variational model"):
        plain.encode_distribution(x)


def test_variational_options_are_checked():
    with pytest.raises(ConfigError, match="do not apply to preset 'pca'"):
        ModelConfig.from_preset("pca", variational=True)
    with pytest.raises(ConfigError, match="beta applies to a variational model only"):
        ModelConfig(beta=0.5)
    with pytest.raises(ConfigError, match="beta must be >= 0"):
        ModelConfig(variational=True, beta=-1.0)
    vae = ModelConfig.from_preset("spiralnet++", variational=True, beta=0.01, kl_warmup=5)
    assert vae.preset == "spiralnet++"  # still that preset, variational
    assert ModelConfig.from_dict(vae.to_dict()) == vae
