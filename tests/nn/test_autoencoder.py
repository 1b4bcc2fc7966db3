import itertools
import json

import pytest
import torch

import deep3dmm
from deep3dmm.errors import CheckpointError, ConfigError, TopologyMismatchError
from deep3dmm.nn import PRESETS, AttentionPool, FixedPool, MeshAutoencoder, build_preset

COMBOS = list(itertools.product(["spiral", "cheb"], ["fixed", "attention"]))
SMALL = dict(channels=(8, 16), latent=6, top_k=(4, 8), K=3)


@pytest.mark.parametrize("conv,pool", COMBOS)
def test_shapes_every_combination(small_hierarchy, conv, pool):
    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv=conv, pool=pool, **SMALL)
    x = torch.randn(3, 162, 3)
    z = model.encode(x)
    assert z.shape == (3, 6)
    assert model.decode(z).shape == (3, 162, 3)
    assert model(x).shape == (3, 162, 3)
    n_att = sum(isinstance(m, AttentionPool) for m in model.modules())
    n_fixed = sum(isinstance(m, FixedPool) for m in model.modules())
    assert (n_att, n_fixed) == ((4, 0) if pool == "attention" else (0, 4))


@pytest.mark.parametrize("conv,pool", COMBOS)
def test_batched_equals_per_sample(small_hierarchy, conv, pool):
    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv=conv, pool=pool, **SMALL)
    x = torch.randn(4, 162, 3)
    with torch.no_grad():
        y = model(x)
        for b in range(4):
            torch.testing.assert_close(y[b : b + 1], model(x[b : b + 1]), atol=1e-5, rtol=1e-4)


def test_down_up_att_flags(small_hierarchy):
    model = MeshAutoencoder.build(small_hierarchy, pool="attention", up_att=False, **SMALL)
    assert all(isinstance(p, AttentionPool) for p in model.down_pools)
    assert all(isinstance(p, FixedPool) for p in model.up_pools)


@pytest.mark.parametrize("conv", ["spiral", "cheb"])
def test_config_roundtrip_and_frozen_state_dict(small_hierarchy, conv, tmp_path):
    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv=conv, pool="attention", **SMALL)
    config = json.loads(json.dumps(model.config))
    assert config["hierarchy_hash"] == small_hierarchy.hash
    assert config["num_vertices"] == [162, 81, 41] and config["frozen"] is False
    rebuilt = MeshAutoencoder.from_config(config, small_hierarchy)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 162, 3)
    torch.testing.assert_close(rebuilt(x), model(x))
    # freeze: outputs kept, config records it, state_dict loads into a frozen from_config model
    with torch.no_grad():
        before = model(x)
    model.freeze_pooling()
    assert model.config["frozen"] is True
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)
    path = tmp_path / "model.pt"
    torch.save({"config": model.config, "state": model.state_dict()}, path)
    ckpt = torch.load(path)
    frozen = MeshAutoencoder.from_config(ckpt["config"], small_hierarchy)
    frozen.load_state_dict(ckpt["state"])
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), model(x), atol=1e-6, rtol=1e-6)


def test_from_config_rejects_other_hierarchy(small_hierarchy, tiny_hierarchy):
    model = MeshAutoencoder.build(small_hierarchy, **SMALL)
    with pytest.raises(CheckpointError, match="built on hierarchy"):
        MeshAutoencoder.from_config(model.config, tiny_hierarchy)


def test_errors(small_hierarchy):
    model = MeshAutoencoder.build(small_hierarchy, **SMALL)
    with pytest.raises(TopologyMismatchError, match=r"\(B, 162, 3\).*\(2, 100, 3\)"):
        model(torch.zeros(2, 100, 3))
    with pytest.raises(ConfigError, match="decode expected codes"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(ConfigError, match="conv must be one of"):
        MeshAutoencoder.build(small_hierarchy, conv="gcn", channels=(8, 8))
    with pytest.raises(ConfigError, match="pool must be one of"):
        MeshAutoencoder.build(small_hierarchy, pool="max", channels=(8, 8))
    with pytest.raises(ConfigError, match="activation must be one of"):
        MeshAutoencoder.build(small_hierarchy, activation="swish", channels=(8, 8))
    with pytest.raises(ConfigError, match="2 pooling steps"):
        MeshAutoencoder.build(small_hierarchy, channels=(8, 8, 8))
    with pytest.raises(ConfigError, match="unknown model preset"):
        build_preset("coma2", small_hierarchy)
    with pytest.raises(ConfigError, match="unknown option"):
        build_preset("coma", small_hierarchy, filters=3)


def test_presets_and_reexport(small_hierarchy):
    assert deep3dmm.MeshAutoencoder is MeshAutoencoder
    assert set(PRESETS) == {
        "coma",
        "neural3dmm",
        "spiralnet++",
        "deep3dmm-spectral",
        "deep3dmm-spiral",
    }
    for name in PRESETS:
        model = build_preset(name, small_hierarchy, channels=(4, 4))
        assert model(torch.randn(1, 162, 3)).shape == (1, 162, 3)
    coma = build_preset("coma", small_hierarchy, channels=(4, 4)).config
    assert coma["conv"] == "cheb" and coma["K"] == 6 and coma["latent"] == 8
    d3 = build_preset("deep3dmm-spiral", small_hierarchy, channels=(4, 4)).config
    assert d3["pool"] == "attention" and d3["top_k"] == [8, 32] and d3["attention_dim"] == 21
    assert d3["prior_weight"] == 0.8 and d3["latent"] == 16
    assert "conv='spiral'" in repr(build_preset("spiralnet++", small_hierarchy, channels=(4, 4)))


def test_coma_hierarchy_shapes(coma_hierarchy):
    assert coma_hierarchy.num_vertices == [5023, 1256, 314, 79, 20]
    for conv, pool in COMBOS:
        model = MeshAutoencoder.build(coma_hierarchy, conv=conv, pool=pool)
        with torch.no_grad():
            assert model(torch.randn(2, 5023, 3)).shape == (2, 5023, 3)


@pytest.mark.slow
@pytest.mark.parametrize("conv,pool", COMBOS)
def test_overfits_eight_meshes(tiny_hierarchy, conv, pool):
    """Each combination drives the L1 loss on 8 meshes well down in a few hundred steps."""
    torch.manual_seed(0)
    base = torch.from_numpy(tiny_hierarchy.vertices[0])
    scale = torch.rand(8, 1, 3) * 0.6 + 0.7
    x = base * scale + 0.05 * torch.randn(8, 1, 3)
    model = MeshAutoencoder.build(
        tiny_hierarchy, conv=conv, pool=pool, channels=(16, 16), latent=8, top_k=(4, 8), K=4
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = (model(x) - x).abs().mean().item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = (model(x) - x).abs().mean()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * start, (start, loss.item())


@pytest.mark.parametrize("conv,pool", COMBOS)
def test_inplace_activation_same_numbers_fewer_saved_bytes(small_hierarchy, conv, pool):
    """The in-place activation changes no output or gradient, and keeps less for backward.

    Float64: the in-place ELU differentiates through its result (``y + alpha``), the
    out-of-place one through its input (``alpha exp(x)``): equal up to rounding.
    """
    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv=conv, pool=pool, **SMALL).double()
    assert model.activation.inplace
    x = torch.randn(3, 162, 3, dtype=torch.double)

    def run():
        saved = {}

        def pack(t):  # bytes of every distinct storage kept for the backward
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        model.zero_grad()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        return y.detach(), grads, sum(saved.values())

    y_in, grads_in, bytes_in = run()
    model.activation = torch.nn.ELU()  # the reference: out of place
    y_out, grads_out, bytes_out = run()
    torch.testing.assert_close(y_in, y_out, rtol=0, atol=0)
    for a, b in zip(grads_in, grads_out, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if conv == "cheb" and pool == "fixed":  # neither consumer keeps the activation's output
        assert bytes_in == bytes_out
    else:  # a spiral conv or an attention pool keeps it: in place, it is the conv's output
        assert bytes_in < bytes_out
