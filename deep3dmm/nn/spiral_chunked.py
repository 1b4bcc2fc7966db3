r"""The gather-first spiral map evaluated in cache-sized row chunks (CPU).

With spirals :math:`S` (V, L), weight :math:`W` (C_out, L*C_in) and the batch flattened to
rows :math:`r = bV + i`, the layer is :math:`y_r = G_r W^\top + \mathrm{bias}` with
:math:`G_r = [x_{b,S_{i0}} \| \dots \| x_{b,S_{i,L-1}}]`. The whole gathered matrix
:math:`G` (B*V, L*C_in) is ~185 MB for a batch of 32 COMA meshes at 32 channels; written to
memory and read back by the matmul it costs as much as the arithmetic. Here the rows are
taken ``rows`` at a time: each chunk of :math:`G` is gathered, multiplied and dropped while
it is still in cache, and nothing of size :math:`B V L C` is kept for the backward, which
runs in the matmul-first order, chunk by chunk, also without :math:`G`:

- :math:`\partial Z_{(r, l)} = \sum_{i: S_{il} = j} \partial y_{bV+i}` (row :math:`r = bV + j`),
  a bag sum over the transposed spiral table (a gather, no scatter), ``(rows, L*C_out)``;
- :math:`\partial x_r = \partial Z_r W_r^\top` and
  :math:`\partial W_r \mathrel{+}= x_c^\top \partial Z_c` with :math:`W_r` (C_in, L*C_out)
  the weight rearranged (:math:`(W_r)_{c, lO+o} = W_{o, lC+c}`);
- when ``x`` needs no gradient (the first layer, on data) only
  :math:`\partial W \mathrel{+}= \partial y_c^\top G_c`, with the chunk gathered again.

Same parameters and results as :func:`deep3dmm.nn.spiral_gather.spiral_gather_linear`
(up to float summation order). One thread per chunk call is the regime it is made for; with
``T`` threads the chunks grow ``T``-fold so every call still has work for the whole team.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deep3dmm.nn.sparse import _bag_sum
from deep3dmm.nn.spiral_gather import SpiralTables, _as_output

__all__ = ["spiral_chunked_linear", "chunk_rows"]

#: Gathered values per chunk and thread: 2,048 rows of L*C = 288 float32 columns (2.4 MB).
#: Narrower layers take proportionally more rows (the first layer, 27 columns, 21,845), so a
#: thin gather is not cut into many small calls (docs/benchmarks.md, attempts).
VALUES_PER_THREAD = 2048 * 288


def chunk_rows(columns: int = 288) -> int:
    """Rows per chunk of a ``columns``-wide gather.

    :data:`VALUES_PER_THREAD` / ``columns`` (at least 2,048) times torch's thread count.
    """
    per_thread = max(2048, VALUES_PER_THREAD // max(1, columns))
    return per_thread * max(1, torch.get_num_threads())


class _Chunks:
    """Per-chunk slices of the batched gather and transposed tables (cached per batch).

    ``forward``: ``(start, end, gather rows)`` over the ``B*V_out`` output rows;
    ``backward``: ``(start, end, dZ bag rows, bag offsets)`` over the ``B*V_in`` input rows.
    """

    def __init__(self, tables: SpiralTables, batch: int, rows: int):
        length = tables.length
        gather = tables.batched_gather(batch)  # (B*V_out*L,) rows of the flat (B*V_in, C) input
        z_t, z_t_offsets = tables.batched("z_t", batch)
        self.forward = []
        n = batch * tables.vertices
        for start in range(0, n, rows):
            end = min(n, start + rows)
            self.forward.append((start, end, gather[start * length : end * length]))
        self.backward = []
        n = batch * tables.in_vertices
        for start in range(0, n, rows):
            end = min(n, start + rows)
            bags = z_t_offsets[start * length : end * length + 1]
            first, last = int(bags[0]), int(bags[-1])
            self.backward.append((start, end, z_t[first:last], bags - first))


def _chunks(tables: SpiralTables, batch: int, rows: int) -> _Chunks:
    key = ("chunks", batch, rows)
    if key not in tables._batched:  # dropped with the other per-batch tables (.to, new B)
        tables._batched[key] = (_Chunks(tables, batch, rows), None)
    return tables._batched[key][0]


class _ChunkedGatherLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, tables, weight, bias, rows):
        b, v, c = x.shape
        o = weight.shape[0]
        xf = x.reshape(b * v, c)
        wt = weight.t()  # (L*C_in, C_out)
        out = x.new_empty(b * tables.vertices, o)
        chunks = _chunks(tables, b, rows)
        for start, end, index in chunks.forward:
            g = xf.index_select(0, index).view(end - start, -1)  # (rows, L*C_in)
            torch.mm(g, wt, out=out[start:end])
        if bias is not None:  # one pass (addmm per chunk copied the broadcast bias first)
            out.add_(bias)
        ctx.chunks, ctx.shape, ctx.has_bias = chunks, (b, v, c), bias is not None
        ctx.save_for_backward(xf, weight)
        return _as_output(out, b, tables.vertices, o)

    @staticmethod
    def backward(ctx, grad):
        xf, weight = ctx.saved_tensors
        b, v, c = ctx.shape
        o = weight.shape[0]
        length = weight.shape[1] // c
        grad = grad.reshape(-1, o).contiguous()  # (B*V_out, C_out)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        grad_x = xf.new_empty(b * v, c) if need_x else None
        grad_wr = weight.new_zeros(c, length * o) if need_x and need_w else None  # (C_in, L*O)
        grad_w = weight.new_zeros(o, length * c) if need_w and not need_x else None
        w_rt = weight.view(o, length, c).transpose(0, 1).reshape(length * o, c)  # (L*O, C_in)
        for start, end, z_t, z_offsets in ctx.chunks.backward if need_x else []:
            dz = _bag_sum(grad, z_t, z_offsets)
            dz = dz.view(end - start, length * o)  # (rows, L*O): dZ of input rows start..end
            torch.mm(dz, w_rt, out=grad_x[start:end])
            if need_w:
                grad_wr.addmm_(xf[start:end].t(), dz)
        for start, end, index in ctx.chunks.forward if need_w and not need_x else []:
            g = xf.index_select(0, index).view(end - start, -1)  # the C_in-wide chunk again
            grad_w.addmm_(grad[start:end].t(), g)
        if grad_wr is not None:
            grad_w = grad_wr.view(c, length, o).permute(2, 1, 0).reshape(o, length * c)
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        grad_x = None if grad_x is None else grad_x.view(b, v, c)
        return grad_x, None, grad_w, grad_b, None


def spiral_chunked_linear(
    x: Tensor, tables: SpiralTables, weight: Tensor, bias: Tensor | None, *, rows: int | None = None
) -> Tensor:
    """Gather-first spiral map in row chunks: ``(B, V_in, C_in)`` -> ``(B, V_out, C_out)``.

    Args:
        x: ``(B, V_in, C_in)``.
        tables: :class:`~deep3dmm.nn.spiral_gather.SpiralTables` of the spirals.
        weight: ``(C_out, L*C_in)`` (``nn.Linear`` layout, position ``l*C_in + c``).
        bias: ``(C_out,)`` or ``None``.
        rows: rows of the flattened batch per chunk (default :func:`chunk_rows`).
    """
    rows = int(rows or chunk_rows(weight.shape[1]))
    return _ChunkedGatherLinear.apply(x, tables, weight, bias, rows)
