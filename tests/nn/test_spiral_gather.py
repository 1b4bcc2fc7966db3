"""The gather-backward spiral convolution against the previous implementation and a loop."""

import pytest
import torch

from deep3dmm.nn import SpiralConv
from deep3dmm.nn.spiral_chunked import spiral_chunked_linear
from deep3dmm.nn.spiral_gather import SpiralTables, spiral_gather_linear, spiral_matmul_gather
from tests.nn.conftest import loop_reference


def previous_implementation(conv: SpiralConv, x: torch.Tensor) -> torch.Tensor:
    """SpiralConv before the custom backward: autograd through index_select and nn.Linear."""
    b, v, _ = x.shape
    gathered = x.index_select(1, conv.spirals.view(-1))  # (B, V*L, C_in)
    return conv.linear(gathered.view(b, v, -1))


def padded_spirals(hierarchy, level: int) -> torch.Tensor:
    """The level's spirals with some entries repeated (as padded spirals of short rings)."""
    spirals = torch.as_tensor(hierarchy.spirals[level]).clone()
    spirals[::3, -2:] = spirals[::3, :1]
    return spirals


def outputs_and_gradients(fn, conv, x, probe):
    x = x.clone().requires_grad_(True)
    y = fn(conv, x)
    grads = torch.autograd.grad((y * probe).sum(), (x, conv.linear.weight, conv.linear.bias))
    return (y, *grads)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("c_in,c_out", [(3, 16), (16, 3), (6, 6)])
def test_matches_previous_implementation_and_loop(small_hierarchy, dtype, tol, c_in, c_out):
    """Output and the gradients of x, weight and bias: max abs difference <= tol x the
    reference's largest magnitude (the weight gradient sums B*V products)."""
    torch.manual_seed(0)
    conv = SpiralConv(c_in, c_out, padded_spirals(small_hierarchy, 0)).to(dtype)
    assert conv.matmul_first == (c_in > c_out)
    x = torch.randn(4, conv.num_vertices, c_in, dtype=dtype)
    probe = torch.randn(4, conv.num_vertices, c_out, dtype=dtype)
    ours = outputs_and_gradients(lambda m, t: m(t), conv, x, probe)
    for reference in (previous_implementation, loop_reference):
        theirs = outputs_and_gradients(reference, conv, x, probe)
        for a, b in zip(ours, theirs, strict=True):  # tol relative to the tensor's scale
            scale = max(1.0, float(b.detach().abs().max()))
            assert float((a - b).detach().abs().max()) <= tol * scale


@pytest.mark.parametrize("matmul_first", [False, True])
def test_gradcheck_float64(small_hierarchy, matmul_first):
    torch.manual_seed(1)
    spirals = padded_spirals(small_hierarchy, 2)  # 41 vertices
    tables = SpiralTables(spirals)
    c_in, c_out = (5, 2) if matmul_first else (2, 5)
    length = spirals.shape[1]
    x = torch.randn(2, spirals.shape[0], c_in, dtype=torch.double, requires_grad=True)
    w = torch.randn(c_out, length * c_in, dtype=torch.double, requires_grad=True)
    b = torch.randn(c_out, dtype=torch.double, requires_grad=True)
    if matmul_first:
        fn = lambda x, w, b: spiral_matmul_gather(x, tables, w, b)  # noqa: E731
    else:
        fn = lambda x, w, b: spiral_gather_linear(x, spirals, tables, w, b)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("rows", [64, 100, 10_000])  # many chunks, a ragged last one, one
def test_chunked_matches_unchunked(small_hierarchy, dtype, tol, rows):
    """The row-chunked CPU path equals the whole-matrix path and the loop, with gradients."""
    torch.manual_seed(2)
    conv = SpiralConv(6, 5, padded_spirals(small_hierarchy, 0)).to(dtype)
    x = torch.randn(3, conv.num_vertices, 6, dtype=dtype)
    probe = torch.randn(3, conv.num_vertices, 5, dtype=dtype)
    w, b, tables = conv.linear.weight, conv.linear.bias, conv.tables()
    ours = outputs_and_gradients(
        lambda m, t: spiral_chunked_linear(t, tables, w, b, rows=rows), conv, x, probe
    )
    whole = outputs_and_gradients(
        lambda m, t: spiral_gather_linear(t, m.spirals, tables, w, b), conv, x, probe
    )
    for reference in (whole, outputs_and_gradients(loop_reference, conv, x, probe)):
        for a, ref in zip(ours, reference, strict=True):
            scale = max(1.0, float(ref.detach().abs().max()))
            assert float((a - ref).detach().abs().max()) <= tol * scale


def test_chunked_gradcheck_float64(small_hierarchy):
    torch.manual_seed(3)
    spirals = padded_spirals(small_hierarchy, 2)  # 41 vertices
    tables = SpiralTables(spirals)
    x = torch.randn(2, spirals.shape[0], 3, dtype=torch.double, requires_grad=True)
    w = torch.randn(4, spirals.shape[1] * 3, dtype=torch.double, requires_grad=True)
    b = torch.randn(4, dtype=torch.double, requires_grad=True)
    fn = lambda x, w, b: spiral_chunked_linear(x, tables, w, b, rows=30)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))


def test_tables_follow_the_buffer(small_hierarchy):
    """Loading other spirals into the buffer (in place) rebuilds the transposed tables."""
    spirals = torch.as_tensor(small_hierarchy.spirals[1])
    conv = SpiralConv(4, 4, spirals)
    x = torch.randn(2, conv.num_vertices, 4, requires_grad=True)
    conv(x).sum().backward()
    state = conv.state_dict()
    state["spirals"] = torch.roll(spirals, 1, dims=1)
    conv.load_state_dict(state)
    x2 = x.detach().clone().requires_grad_(True)
    x3 = x.detach().clone().requires_grad_(True)
    (conv(x2) ** 2).sum().backward()
    (previous_implementation(conv, x3) ** 2).sum().backward()
    torch.testing.assert_close(x2.grad, x3.grad)


def test_frozen_input_skips_its_gradient(small_hierarchy):
    conv = SpiralConv(3, 8, small_hierarchy.spirals[0])
    x = torch.randn(2, conv.num_vertices, 3)  # data: no gradient wanted
    conv(x).sum().backward()
    assert conv.linear.weight.grad is not None and x.grad is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("c_in,c_out", [(3, 16), (16, 3)])
def test_cuda_matches_cpu(small_hierarchy, c_in, c_out):
    torch.manual_seed(0)
    conv = SpiralConv(c_in, c_out, small_hierarchy.spirals[0])
    x = torch.randn(3, conv.num_vertices, c_in)
    probe = torch.randn(3, conv.num_vertices, c_out)
    cpu = outputs_and_gradients(lambda m, t: m(t), conv, x, probe)
    conv = conv.cuda()
    gpu = outputs_and_gradients(lambda m, t: m(t), conv, x.cuda(), probe.cuda())
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(a, b.cpu(), atol=1e-5, rtol=1e-5)


def test_convolutions_of_equal_spirals_share_one_int32_table(small_hierarchy):
    """Three convolutions of a level (separate but equal spiral tensors) build the tables
    once; other spirals get their own. The shared tables still give each layer its own
    result (checked against the independent loop reference)."""
    spirals = torch.as_tensor(small_hierarchy.spirals[0])
    convs = [SpiralConv(c_in, c_out, spirals.clone()) for c_in, c_out in ((3, 8), (8, 8), (8, 3))]
    tables = [conv.tables() for conv in convs]
    assert tables[0] is tables[1] is tables[2]
    assert tables[0].flat.dtype == torch.int32 and tables[0].batched("z_t", 4)[0].dtype == (
        torch.int32
    )
    other = SpiralConv(3, 8, padded_spirals(small_hierarchy, 0))
    assert other.tables() is not tables[0]
    torch.manual_seed(2)
    x = torch.randn(2, convs[0].num_vertices, 3)
    for conv in convs:
        y = conv(x)
        torch.testing.assert_close(y, loop_reference(conv, x), rtol=1e-5, atol=1e-5)
        x = y
