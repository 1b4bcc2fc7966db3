"""Sparse-matrix helpers shared by the pooling and Chebyshev layers.

Constant operators (D, U, the rescaled Laplacian, a frozen attention mapping) are kept as
three dense buffers per matrix (CSR row pointers, column indices, values) plus the same three
for the transpose, so ``.to(device)``, ``state_dict`` and checkpoints carry them like any other
tensor, and the backward pass ``dL/dx = A^T dL/dy`` is one more CSR product, never a scatter.

Learned operators (the attention head) change every step; :func:`learned_spmm` multiplies by a
CSR matrix whose values carry gradients, using sampled dense-dense products (SDDMM) for the
value gradient, so nothing of size ``nnz x B x C`` or ``V_out x V_in x B`` is ever built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "index_dtype",
    "regular_pointers",
    "block_diagonal",
    "csr_parts",
    "register_csr",
    "csr_from_buffers",
    "spmm",
    "constant_spmm",
    "batched_constant_spmm",
    "learned_spmm",
    "sampled_dot",
    "to_vertex_major",
    "from_vertex_major",
]

# torch's notices about the CSR products used deliberately here (validated at construction)
# are silenced by the entry points (deep3dmm.cli.QUIET_WARNINGS), not by the library.


def index_dtype(size: int) -> torch.dtype:
    """``torch.int32`` for index arrays of tensors with fewer than 2^31 entries, else int64.

    The bag-sum and SDDMM kernels take either (indices and row pointers of one dtype); int32
    halves the memory of the learned mappings' per-step index arrays.
    """
    return torch.int32 if size < 2**31 else torch.int64


def regular_pointers(rows: int, width: int, like: Tensor) -> Tensor:
    """CSR row pointers ``(rows+1,)`` of ``rows`` rows of ``width`` entries each.

    In the index dtype and on the device of ``like`` (the pattern's column indices).
    """
    return torch.arange(0, rows * width + 1, width, dtype=like.dtype, device=like.device)


def csr_parts(matrix) -> tuple[Tensor, Tensor, Tensor]:
    """Canonical CSR arrays ``(crow (R+1,), col (nnz,), val (nnz,))`` of a scipy/torch matrix.

    Duplicates are summed and column indices sorted within each row.
    """
    if isinstance(matrix, Tensor):
        matrix = matrix.detach().cpu()
        if matrix.layout != torch.strided:
            matrix = matrix.to_dense()
        matrix = sp.csr_matrix(matrix.numpy())
    csr = sp.csr_matrix(matrix, dtype=np.float64)
    csr.sum_duplicates()
    csr.sort_indices()
    return (
        torch.from_numpy(csr.indptr.astype(np.int64)),
        torch.from_numpy(csr.indices.astype(np.int64)),
        torch.from_numpy(csr.data.astype(np.float32)),
    )


def register_csr(module: nn.Module, name: str, matrix, *, transpose: bool = True) -> None:
    """Register ``matrix`` (and, by default, its transpose) as CSR buffers on ``module``.

    Buffers: ``{name}_crow``, ``{name}_col``, ``{name}_val`` and, with ``transpose``,
    ``{name}_t_crow``, ``{name}_t_col``, ``{name}_t_val``. The shape is stored as the buffer
    ``{name}_shape`` (a 2-element LongTensor) so a checkpoint is self-describing.
    """
    crow, col, val = csr_parts(matrix)
    shape = (len(crow) - 1, int(matrix.shape[1]))
    module.register_buffer(f"{name}_crow", crow)
    module.register_buffer(f"{name}_col", col)
    module.register_buffer(f"{name}_val", val)
    module.register_buffer(f"{name}_shape", torch.tensor(shape, dtype=torch.long))
    if transpose:
        csr = sp.csr_matrix((val.numpy(), col.numpy(), crow.numpy()), shape=shape)
        t_crow, t_col, t_val = csr_parts(csr.T)
        module.register_buffer(f"{name}_t_crow", t_crow)
        module.register_buffer(f"{name}_t_col", t_col)
        module.register_buffer(f"{name}_t_val", t_val)


def csr_from_buffers(module: nn.Module, name: str, *, transpose: bool = False) -> Tensor:
    """The ``torch.sparse_csr_tensor`` view of buffers registered by :func:`register_csr`."""
    rows, cols = (int(s) for s in getattr(module, f"{name}_shape").tolist())
    prefix = f"{name}_t" if transpose else name
    if transpose:
        rows, cols = cols, rows
    return torch.sparse_csr_tensor(
        getattr(module, f"{prefix}_crow"),
        getattr(module, f"{prefix}_col"),
        getattr(module, f"{prefix}_val"),
        (rows, cols),
        check_invariants=False,
    )


def spmm(a: Tensor, x: Tensor) -> Tensor:
    r"""``A @ x`` for a sparse CSR ``A`` and a dense ``x``.

    On CPU in float32 the product runs as a weighted bag sum, ``F.embedding_bag`` over the
    CSR arrays (row :math:`i` is :math:`\sum_e a_e x_{col_e}` over its entries), whose
    FBGEMM kernel beats ``torch.sparse.mm`` (MKL) on the mesh operators (measured figures:
    docs/models.md). Other dtypes and devices use ``torch.sparse.mm``. Entries may repeat a
    column within a row (they add up).

    Shapes:
        a ``(R, N)`` sparse CSR, x ``(N, F)`` -> ``(R, F)``.
    """
    if a.dtype != x.dtype:
        a = a.to(x.dtype)
    if x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 2:
        return _bag_sum(x, a.col_indices(), a.crow_indices(), a.values())
    return torch.sparse.mm(a, x)


class _ConstantSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
        ctx.a_t = a_t
        return spmm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, None, spmm(ctx.a_t, grad)


def constant_spmm(a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
    """``A @ x`` for a constant sparse CSR ``A`` whose transpose ``a_t`` serves the backward.

    Args:
        a: sparse CSR ``(R, N)``.
        a_t: sparse CSR ``(N, R)`` equal to ``A^T`` (pass ``a`` itself for symmetric ``A``).
        x: dense ``(N, F)``.

    Returns:
        dense ``(R, F)``.
    """
    return _ConstantSpMM.apply(a, a_t, x)


def _batched_csr(module: nn.Module, name: str, batch: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(cols, offsets, values)`` of the CSR ``name`` repeated block-diagonally ``batch`` times.

    Cached on the module while the buffers are unchanged; int32 indices while they fit.
    """
    crow, col, val = (getattr(module, f"{name}_{part}") for part in ("crow", "col", "val"))
    key = (name, batch, crow.data_ptr(), col.data_ptr(), val.data_ptr(), val._version)
    cache = module.__dict__.setdefault("_batched_csr", {})
    if key not in cache:
        base = name.removesuffix("_t")  # the transpose's columns are M's rows
        sources = int(getattr(module, f"{base}_shape")[0 if name != base else 1])
        for old in [k for k in cache if k[0] == name]:
            del cache[old]
        cache[key] = (*block_diagonal(col, crow, sources, batch), val.repeat(batch))
    return cache[key]


def block_diagonal(indices: Tensor, offsets: Tensor, sources: int, batch: int):
    """The CSR ``(indices, offsets)`` repeated block-diagonally ``batch`` times.

    Copy ``b`` reads the rows ``indices + b * sources`` of the flattened ``(B * sources, C)``
    input and its bags follow those of copy ``b - 1``; int32 while the entries fit
    (:func:`index_dtype`).

    Returns:
        ``(indices (B*E,), offsets (B*R+1,))``.
    """
    dtype = index_dtype(batch * max(sources, indices.numel()) + 1)
    indices, offsets = indices.to(dtype), offsets.to(dtype)
    shift = torch.arange(batch, dtype=dtype, device=indices.device)
    repeated = (indices[None, :] + shift[:, None] * sources).reshape(-1)
    starts = (offsets[None, :-1] + shift[:, None] * indices.numel()).reshape(-1)
    end = torch.tensor([batch * indices.numel()], dtype=dtype, device=indices.device)
    return repeated, torch.cat([starts, end])


def _bag_sum(
    source: Tensor, indices: Tensor, offsets: Tensor, weights: Tensor | None = None
) -> Tensor:
    """``out[m] = sum_{e in bag m} w_e source[indices[e]]`` (``F.embedding_bag``, mode sum).

    ``w_e = 1`` without ``weights``; ``offsets`` holds the last offset too (CSR row pointers).
    """
    if weights is not None:
        weights = weights.to(source.dtype)
    return F.embedding_bag(
        indices,
        source.contiguous(),
        offsets,
        mode="sum",
        per_sample_weights=weights,
        include_last_offset=True,
    )


class _BatchedBagSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, module, name, out_vertices):
        b, v, c = x.shape
        ctx.module, ctx.name, ctx.shape = module, name, (b, v, c)
        forward = _batched_csr(module, name, b)
        return _bag_sum(x.reshape(b * v, c), *forward).view(b, out_vertices, c)

    @staticmethod
    def backward(ctx, grad):
        b, v, c = ctx.shape
        grad = grad.reshape(-1, c).contiguous()
        transposed = _batched_csr(ctx.module, f"{ctx.name}_t", b)  # built on first need
        return _bag_sum(grad, *transposed).view(b, v, c), None, None, None


def batched_constant_spmm(module: nn.Module, name: str, x: Tensor) -> Tensor:
    """``Y_b = M X_b`` for every sample, ``M`` the constant CSR ``name`` of :func:`register_csr`.

    On CPU in float32, when ``M`` is sparse enough, one weighted bag sum over the
    block-diagonal ``diag(M, ..., M)`` reads ``x`` in its ``(B*V_in, C)`` layout and writes
    ``(B*V_out, C)``: no vertex-major copy in or out. Its index arrays repeat ``M``'s per
    sample and are cached (the transpose's only once a backward needs it), so the path is
    taken while they are no larger than the two copies they avoid (``12 nnz B`` bytes
    against ``4 (V_in + V_out) B C``: D and U, a frozen attention down-mapping; not a frozen
    up-mapping with 35 entries per row). Otherwise one :func:`constant_spmm` over the
    vertex-major ``(V_in, B*C)`` features.

    Shapes:
        x ``(B, V_in, C)`` -> ``(B, V_out, C)``.
    """
    rows, cols = (int(n) for n in getattr(module, f"{name}_shape"))
    nnz = getattr(module, f"{name}_col").numel()
    sparse_enough = 3 * nnz <= (rows + cols) * x.shape[-1]
    if x.device.type == "cpu" and x.dtype == torch.float32 and sparse_enough:
        return _BatchedBagSum.apply(x, module, name, rows)
    a = csr_from_buffers(module, name)
    a_t = csr_from_buffers(module, name, transpose=True)
    return from_vertex_major(constant_spmm(a, a_t, to_vertex_major(x)), x.shape[0])


def _transpose(crow: Tensor, col: Tensor, values: Tensor, shape) -> Tensor:
    """The CSR tensor of ``A^T`` for a CSR ``A`` given by its arrays (duplicates allowed).

    Each row of ``A^T`` holds its entries in row order of ``A`` (a stable counting sort by
    column). On CPU that is scipy's ``tocsc`` (O(nnz + N), about 7x faster than the
    comparison sort ``torch.sort(col, stable=True)`` on the 2.8M entries of an 80k-vertex
    up-mapping), whose int32 index arrays are used as they come (no int64 copies); other
    devices sort. The index dtype of the result may differ from ``A``'s.
    """
    rows, cols = shape
    if crow.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        csc = sp.csr_matrix(
            (values.detach().numpy(), col.numpy(), crow.numpy()), shape=(rows, cols)
        ).tocsc()  # no sum_duplicates: entries stay as they are, in row order per column
        return torch.sparse_csr_tensor(
            torch.from_numpy(csc.indptr),
            torch.from_numpy(csc.indices),
            torch.from_numpy(csc.data),
            (cols, rows),
            check_invariants=False,
        )
    counts = crow[1:] - crow[:-1]
    row = torch.repeat_interleave(torch.arange(rows, dtype=col.dtype, device=crow.device), counts)
    # entries by (col, row): they are in row order, so a stable sort by col suffices
    order = torch.sort(col, stable=True).indices
    t_crow = torch.zeros(cols + 1, dtype=col.dtype, device=crow.device)
    t_crow[1:] = torch.cumsum(torch.bincount(col, minlength=cols), 0)
    return torch.sparse_csr_tensor(
        t_crow, row[order], values[order], (cols, rows), check_invariants=False
    )


def _sddmm(crow: Tensor, col: Tensor, shape, grad: Tensor, x: Tensor) -> Tensor:
    """``<grad_i, x_j>`` for every entry ``(i, j)`` of a CSR pattern without repeated columns."""
    ones = torch.ones(col.shape[0], dtype=grad.dtype, device=grad.device)
    pattern = torch.sparse_csr_tensor(crow, col, ones, shape, check_invariants=False)
    return torch.sparse.sampled_addmm(pattern, grad, x.t(), beta=0.0).values()


class _LearnedSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, crow, col, values, shape, x, blocks):
        a = torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
        batch = x.shape[0] if x.dim() == 3 else None
        # the caller's tensor is saved, not the vertex-major copy (made again in backward):
        # a (B, V, C) input is usually kept for another backward already (an in-place
        # activation's result), so the copy would double it
        ctx.save_for_backward(crow, col, values, x)
        ctx.shape, ctx.blocks, ctx.batch = shape, blocks, batch
        if batch is None:
            return spmm(a, x)
        return from_vertex_major(spmm(a, to_vertex_major(x)), batch)

    @staticmethod
    def backward(ctx, grad):
        crow, col, values, x = ctx.saved_tensors
        batch = ctx.batch
        grad = grad.contiguous() if batch is None else to_vertex_major(grad)
        grad_values = grad_x = None
        if ctx.needs_input_grad[2]:
            x = x if batch is None else to_vertex_major(x)
            # SDDMM: (grad @ x^T) sampled at the pattern: dL/dA_ij = <grad_i, x_j>.
            if ctx.blocks is None:
                grad_values = _sddmm(crow, col, ctx.shape, grad, x)
            else:  # one SDDMM per duplicate-free block of the regular (R, sum(blocks)) layout
                rows = ctx.shape[0]
                pieces = []
                for block in col.view(rows, -1).split(ctx.blocks, dim=1):
                    width = block.shape[1]
                    pointers = regular_pointers(rows, width, col)
                    sampled = _sddmm(pointers, block.reshape(-1), ctx.shape, grad, x)
                    pieces.append(sampled.view(rows, width))
                grad_values = torch.cat(pieces, 1).reshape(-1)
            del x
        if ctx.needs_input_grad[4]:
            grad_x = spmm(_transpose(crow, col, values, ctx.shape), grad)
            if batch is not None:
                grad_x = from_vertex_major(grad_x, batch)
        return None, None, grad_values, None, grad_x, None


def learned_spmm(
    crow: Tensor,
    col: Tensor,
    values: Tensor,
    shape,
    x: Tensor,
    *,
    blocks: tuple[int, ...] | None = None,
) -> Tensor:
    """``A @ x`` for a CSR ``A`` whose ``values`` (nnz,) carry gradients.

    The value gradient is an SDDMM (``torch.sparse.sampled_addmm``, one dot product per
    stored entry) and the input gradient a product with the transposed CSR built by one
    stable sort of the entries; columns need not be sorted within a row. The SDDMM needs rows
    free of repeated columns; a matrix whose rows repeat a column (the entries add up) is
    passed in ``blocks``: every row has ``sum(blocks)`` entries, block after block, each block
    free of repeats within the row, and the SDDMM runs once per block.

    Shapes:
        crow ``(R+1,)``, col ``(nnz,)``, values ``(nnz,)``, x ``(N, F)`` -> ``(R, F)``, or
        batched x ``(B, N, C)`` -> ``(B, R, C)`` (one product over the vertex-major
        ``(N, B*C)`` copy, which is not kept for the backward).
    """
    shape = tuple(int(s) for s in shape)
    blocks = None if blocks is None else tuple(int(w) for w in blocks)
    return _LearnedSpMM.apply(crow, col, values, shape, x, blocks)


class _SampledDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, crow, col, a, b, values):
        ctx.save_for_backward(crow, col, a, b)
        if values is not None:
            return values.detach().clone()
        return _sddmm(crow, col, (a.shape[0], b.shape[0]), a, b)

    @staticmethod
    def backward(ctx, grad):
        crow, col, a, b = ctx.saved_tensors
        shape = (a.shape[0], b.shape[0])
        grad_a = grad_b = None
        if ctx.needs_input_grad[2]:  # dL/da_i = sum_j g_ij b_j
            g = torch.sparse_csr_tensor(crow, col, grad, shape, check_invariants=False)
            grad_a = spmm(g, b)
        if ctx.needs_input_grad[3]:  # dL/db_j = sum_i g_ij a_i
            grad_b = spmm(_transpose(crow, col, grad, shape), a)
        return None, None, grad_a, grad_b, None


def sampled_dot(
    crow: Tensor, col: Tensor, a: Tensor, b: Tensor, *, values: Tensor | None = None
) -> Tensor:
    """``<a_i, b_j>`` for every entry ``(i, j)`` of a CSR pattern, differentiable in a and b.

    The forward is one SDDMM; the backward is two sparse-dense products with the pattern
    holding the incoming gradient (and its transpose), so no dense ``(R, N)`` matrix and no
    per-entry copy of ``a`` or ``b`` is built.

    Args:
        crow: ``(R+1,)`` row pointers of the pattern.
        col: ``(nnz,)`` column indices, distinct within a row.
        a: ``(R, d)`` row vectors.
        b: ``(N, d)`` column vectors.
        values: the products when they are known already (the attention search scored the
            pattern's entries to pick them): the forward returns them instead of computing
            them again. The caller vouches that they are ``<a_i, b_j>``.

    Returns:
        ``(nnz,)`` in entry order.
    """
    return _SampledDot.apply(crow, col, a, b, values)


def to_vertex_major(x: Tensor) -> Tensor:
    """``(B, V, C)`` -> contiguous ``(V, B*C)``: each vertex's features as one row."""
    b, v, c = x.shape
    return x.transpose(0, 1).reshape(v, b * c)


def from_vertex_major(y: Tensor, batch: int) -> Tensor:
    """``(V, B*C)`` -> ``(B, V, C)`` (contiguous)."""
    v = y.shape[0]
    return y.view(v, batch, -1).transpose(0, 1).contiguous()
