import pytest
import torch

from deep3dmm.errors import ConfigError, TopologyMismatchError
from deep3dmm.nn import SpiralConv
from tests.nn.conftest import loop_reference


@pytest.mark.parametrize("c_in,c_out", [(3, 8), (8, 3), (5, 5)])
def test_forward_and_gradient_match_loop_reference(small_hierarchy, c_in, c_out):
    torch.manual_seed(0)
    conv = SpiralConv(c_in, c_out, small_hierarchy.spirals[1]).double()
    assert conv.matmul_first == (c_in > c_out)
    x = torch.randn(3, small_hierarchy.num_vertices[1], c_in, dtype=torch.double)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y = conv(x1)
    ref = loop_reference(conv, x2)
    torch.testing.assert_close(y, ref)
    weights = torch.randn_like(y)
    gx, gw, gb = torch.autograd.grad(
        (y * weights).sum(), (x1, conv.linear.weight, conv.linear.bias)
    )
    rx, rw, rb = torch.autograd.grad(
        (ref * weights).sum(), (x2, conv.linear.weight, conv.linear.bias)
    )
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)
    torch.testing.assert_close(gb, rb)


def test_batched_equals_per_sample(small_hierarchy):
    conv = SpiralConv(4, 6, small_hierarchy.spirals[0])
    x = torch.randn(5, small_hierarchy.num_vertices[0], 4)
    batched = conv(x)
    for b in range(5):
        torch.testing.assert_close(batched[b : b + 1], conv(x[b : b + 1]), atol=1e-6, rtol=1e-5)


def test_repr_and_buffers(small_hierarchy):
    conv = SpiralConv(3, 16, small_hierarchy.spirals[0])
    text = repr(conv)
    assert "3, 16" in text and "spiral_length=7" in text and "vertices=162" in text
    assert "spirals" in conv.state_dict()


def test_errors(small_hierarchy):
    conv = SpiralConv(3, 4, small_hierarchy.spirals[0])
    with pytest.raises(TopologyMismatchError, match=r"expected input \(B, 162, 3\).*\(2, 100, 3\)"):
        conv(torch.zeros(2, 100, 3))
    with pytest.raises(ConfigError, match="spiral indices must lie in"):
        SpiralConv(3, 4, torch.tensor([[0, 5], [1, 0]]))
    with pytest.raises(ConfigError, match=r"\(V, L\) index tensor"):
        SpiralConv(3, 4, torch.arange(5))
