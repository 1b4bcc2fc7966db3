import pytest
import torch

from deep3dmm.errors import ConfigError, TopologyMismatchError
from deep3dmm.nn import ChebConv


def dense_reference(conv: ChebConv, lap: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Explicit T_k(L) x with dense matrices, summed with the per-term weights."""
    terms = [x, lap @ x]
    for _ in range(2, conv.K):
        terms.append(2 * lap @ terms[-1] - terms[-2])
    out = sum(t @ w for t, w in zip(terms[: conv.K], conv.weight))
    return out + conv.bias


@pytest.mark.parametrize("K", [1, 2, 6])
def test_forward_and_gradient_match_dense_reference(small_hierarchy, K):
    torch.manual_seed(0)
    lap_sp = small_hierarchy.laplacian[1]
    conv = ChebConv(4, 5, lap_sp, K=K).double()
    lap = torch.from_numpy(lap_sp.toarray()).double()
    x = torch.randn(3, lap.shape[0], 4, dtype=torch.double)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y, ref = conv(x1), dense_reference(conv, lap, x2)
    torch.testing.assert_close(y, ref)
    w = torch.randn_like(y)
    g = torch.autograd.grad((y * w).sum(), (x1, conv.weight))
    r = torch.autograd.grad((ref * w).sum(), (x2, conv.weight))
    for a, b in zip(g, r):
        torch.testing.assert_close(a, b)


def test_batched_equals_per_sample_and_repr(small_hierarchy):
    conv = ChebConv(3, 4, small_hierarchy.laplacian[0], K=6)
    x = torch.randn(4, small_hierarchy.num_vertices[0], 3)
    y = conv(x)
    for b in range(4):
        torch.testing.assert_close(y[b : b + 1], conv(x[b : b + 1]), atol=1e-5, rtol=1e-5)
    assert "K=6" in repr(conv) and "vertices=162" in repr(conv)


def test_errors(small_hierarchy):
    with pytest.raises(ConfigError, match="K must be >= 1"):
        ChebConv(3, 4, small_hierarchy.laplacian[0], K=0)
    conv = ChebConv(3, 4, small_hierarchy.laplacian[0])
    with pytest.raises(TopologyMismatchError, match="expected input"):
        conv(torch.zeros(1, 10, 3))
