"""The spiral convolution at a subset of its vertices (the encoder's selection D) and fused
with the decoder's up-sampling U (``SpiralConv.upsampled``)."""

import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.nn import MeshAutoencoder, SpiralConv
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.spiral_chunked import spiral_chunked_linear
from deep3dmm.nn.spiral_gather import SpiralTables, spiral_gather_linear, spiral_matmul_gather
from deep3dmm.nn.spiral_upsampled import UpsampledSpiralTables, spiral_upsampled_linear
from tests.nn.conftest import loop_reference
from tests.nn.test_spiral_gather import outputs_and_gradients, padded_spirals


def kept_rows(hierarchy, level: int) -> torch.Tensor:
    pool = FixedPool(hierarchy.down[level])
    rows = pool.selection()
    assert rows is not None and rows.numel() == hierarchy.num_vertices[level + 1]
    return rows


def assert_close_all(ours, theirs, tol):
    for a, b in zip(ours, theirs, strict=True):
        scale = max(1.0, float(b.detach().abs().max()))
        assert float((a - b).detach().abs().max()) <= tol * scale


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("c_in,c_out", [(3, 16), (16, 3), (6, 6)])
def test_rows_equal_the_selected_full_output(small_hierarchy, dtype, tol, c_in, c_out):
    """``conv(x, rows)`` is ``conv(x)[:, rows]`` (and the loop oracle's rows), with the
    gradients of x, weight and bias."""
    torch.manual_seed(0)
    conv = SpiralConv(c_in, c_out, padded_spirals(small_hierarchy, 0)).to(dtype)
    rows = kept_rows(small_hierarchy, 0)
    x = torch.randn(4, conv.num_vertices, c_in, dtype=dtype)
    probe = torch.randn(4, rows.numel(), c_out, dtype=dtype)
    ours = outputs_and_gradients(lambda m, t: m(t, rows), conv, x, probe)
    for reference in (lambda m, t: m(t)[:, rows], lambda m, t: loop_reference(m, t)[:, rows]):
        assert_close_all(ours, outputs_and_gradients(reference, conv, x, probe), tol)


@pytest.mark.parametrize("path", ["chunked", "whole", "matmul_first"])
def test_rectangular_paths_gradcheck_float64(small_hierarchy, path):
    """Every evaluation order on a rectangular table (V_out < V_in outputs), chunked with a
    ragged last chunk."""
    torch.manual_seed(4)
    spirals = padded_spirals(small_hierarchy, 1)  # 81 vertices
    rows = kept_rows(small_hierarchy, 1)  # 41 of them
    sub = spirals[rows]
    tables = SpiralTables(sub, spirals.shape[0])
    c_in, c_out = (5, 2) if path == "matmul_first" else (2, 5)
    x = torch.randn(2, spirals.shape[0], c_in, dtype=torch.double, requires_grad=True)
    w = torch.randn(c_out, spirals.shape[1] * c_in, dtype=torch.double, requires_grad=True)
    b = torch.randn(c_out, dtype=torch.double, requires_grad=True)
    fn = {
        "chunked": lambda x, w, b: spiral_chunked_linear(x, tables, w, b, rows=30),
        "whole": lambda x, w, b: spiral_gather_linear(x, sub, tables, w, b),
        "matmul_first": lambda x, w, b: spiral_matmul_gather(x, tables, w, b),
    }[path]
    assert fn(x, w, b).shape == (2, rows.numel(), c_out)
    assert torch.autograd.gradcheck(fn, (x, w, b))


def test_row_tables_follow_the_rows(small_hierarchy):
    conv = SpiralConv(3, 4, small_hierarchy.spirals[0])
    x = torch.randn(2, conv.num_vertices, 3)
    rows = kept_rows(small_hierarchy, 0)
    torch.testing.assert_close(conv(x, rows), conv(x)[:, rows])
    other = torch.flip(rows, [0])[:10]
    torch.testing.assert_close(conv(x, other), conv(x)[:, other])
    rows[:5] = rows[5:10].clone()  # changed in place: the cached tables are not reused
    torch.testing.assert_close(conv(x, rows), conv(x)[:, rows])


def test_selection_only_for_selecting_matrices(small_hierarchy):
    assert FixedPool(small_hierarchy.down[0]).selection() is not None
    assert FixedPool(small_hierarchy.up[0]).selection() is None  # barycentric rows


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_autoencoder_equals_conv_then_pool(small_hierarchy, dtype, tol):
    """The encoder evaluating its convolutions at D's kept vertices and the decoder's fused
    U + conv give the output and the parameter gradients of conv -> activation -> pool over
    every vertex and pool -> conv -> activation."""
    torch.manual_seed(5)
    model = MeshAutoencoder.build(small_hierarchy, channels=(8, 16), latent=4).to(dtype)
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3, dtype=dtype)

    def conv_then_pool(t):
        for conv, pool in zip(model.encoder_convs, model.down_pools, strict=True):
            t = pool(model.activation(conv(t)))
        t = model.from_latent(model.to_latent(t.reshape(t.shape[0], -1)))
        t = t.view(t.shape[0], *model.bottleneck)
        for pool, conv in zip(model.up_pools, model.decoder_convs, strict=True):
            t = model.activation(conv(pool(t)))
        return model.output_conv(t)

    results = []
    for fn in (model, conv_then_pool):
        model.zero_grad()
        y = fn(x)
        (y * torch.cos(y)).sum().backward()
        results.append([y.detach()] + [p.grad.clone() for p in model.parameters()])
    assert_close_all(results[0], results[1], tol)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("c_in,c_out", [(3, 16), (16, 3), (6, 6)])
def test_upsampled_equals_conv_of_pool(small_hierarchy, dtype, tol, c_in, c_out):
    """``conv.upsampled(x, U)`` is ``conv(U x)`` and the loop oracle on ``U x``, with the
    gradients of x, weight and bias."""
    torch.manual_seed(6)
    conv = SpiralConv(c_in, c_out, padded_spirals(small_hierarchy, 0)).to(dtype)
    pool = FixedPool(small_hierarchy.up[0]).to(dtype)
    x = torch.randn(4, pool.in_vertices, c_in, dtype=dtype)
    probe = torch.randn(4, conv.num_vertices, c_out, dtype=dtype)
    ours = outputs_and_gradients(lambda m, t: m.upsampled(t, pool), conv, x, probe)
    for reference in (lambda m, t: m(pool(t)), lambda m, t: loop_reference(m, pool(t))):
        assert_close_all(ours, outputs_and_gradients(reference, conv, x, probe), tol)


def test_upsampled_gradcheck_float64(small_hierarchy):
    torch.manual_seed(7)
    pool = FixedPool(small_hierarchy.up[1]).double()  # 41 -> 81 vertices
    tables = UpsampledSpiralTables(
        padded_spirals(small_hierarchy, 1), pool.matrix_crow, pool.matrix_col, pool.matrix_val,
        pool.in_vertices,
    )  # fmt: skip
    x = torch.randn(2, pool.in_vertices, 3, dtype=torch.double, requires_grad=True)
    w = torch.randn(4, tables.length * 3, dtype=torch.double, requires_grad=True)
    b = torch.randn(4, dtype=torch.double, requires_grad=True)
    fn = lambda x, w, b: spiral_upsampled_linear(x, tables, w, b)  # noqa: E731
    assert fn(x, w, b).shape == (2, pool.out_vertices, 4)
    assert torch.autograd.gradcheck(fn, (x, w, b))


def test_upsampled_rejects_another_level(small_hierarchy):
    conv = SpiralConv(3, 4, small_hierarchy.spirals[1])
    with pytest.raises(ConfigError, match="maps onto 162 vertices"):
        conv.upsampled(torch.zeros(1, 81, 3), FixedPool(small_hierarchy.up[0]))
