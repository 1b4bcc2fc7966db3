"""deep3dmm.testing: the naive reference against the package's fast layers."""

import pytest
import torch

from deep3dmm.mesh import Template, shapes
from deep3dmm.mesh.hierarchy import MeshHierarchy
from deep3dmm.nn import MeshAutoencoder
from deep3dmm.testing import NaiveReference


@pytest.fixture(scope="module")
def small_hierarchy():
    template = Template(*shapes.icosphere(3))
    return MeshHierarchy.build(template, factors=(4, 4, 4, 4), spiral_length=9, seed=0)


@pytest.mark.parametrize("conv", ["spiral", "cheb"])
@pytest.mark.parametrize("pool", ["fixed", "attention", "frozen", "learned"])
def test_naive_reference_matches_the_model(small_hierarchy, conv, pool):
    """The naive reference (dense D/U, per-call indices) computes the same map and gradients."""
    torch.manual_seed(0)
    kwargs = dict(conv=conv, channels=(8, 8, 8, 16), latent=4, top_k=(4, 8))
    if pool == "learned":
        kwargs["attention_mode"] = "learned"
    model = MeshAutoencoder.build(
        small_hierarchy, pool="fixed" if pool == "fixed" else "attention", **kwargs
    )
    if pool == "frozen":
        model.freeze_pooling()
    model = model.double()  # float64: the two summation orders agree to round-off
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3, dtype=torch.float64)
    naive = NaiveReference(model)
    torch.testing.assert_close(naive(x), model(x), rtol=1e-9, atol=1e-10)
    if pool in ("attention", "learned"):  # the gradients reach the same parameters
        params = [p for p in model.parameters()]
        g_model = torch.autograd.grad(model(x).square().sum(), params)
        g_naive = torch.autograd.grad(naive(x).square().sum(), params)
        for a, b in zip(g_naive, g_model):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)
