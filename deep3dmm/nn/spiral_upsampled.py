r"""Up-sampling by a constant matrix and a spiral convolution as one operator, matmul first.

The decoder computes :math:`y = \mathrm{conv}(U x)` with :math:`x` (B, V_c, C_in) on the
coarse level, :math:`U` (V_f, V_c) sparse (barycentric rows) and the spiral convolution on the
fine level, :math:`y_i = \sum_l W_l (U x)_{S_{il}} + b`. Reordered,

.. math::
    y_i = \sum_l \sum_k U_{S_{il}, k}\, (x_k W_l) + b = \sum_{(k, l)} M_{i, kL + l}\, Z_{kL+l} + b,
    \qquad Z = x W_r \;(V_c L, C_{out}),

with :math:`W_r` the weight rearranged to ``(C_in, L*C_out)`` and :math:`M` (V_f, V_c L) the
composite sparse matrix (about 22 entries per row on the COMA hierarchy). The dense product
runs on the coarse level (a quarter of the rows for factor 4) and the fine level is touched
once, by one weighted bag sum (``F.embedding_bag``) that writes the output: no ``(V_f, C_in)``
up-sampled tensor and no ``(V_f, L C_in)`` gathered one. It is the matmul-first map of
:mod:`deep3dmm.nn.spiral_gather` with the weighted composite tables in place of the spiral
ones (backward :math:`\partial Z = M^\top \partial y`, a weighted bag sum over the stored
transpose, :math:`\partial x = \partial Z\, W_r^\top`, :math:`\partial W_r = x^\top
\partial Z`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from deep3dmm.nn.sparse import block_diagonal, index_dtype
from deep3dmm.nn.spiral_gather import _transpose_table, spiral_matmul_gather

__all__ = ["UpsampledSpiralTables", "spiral_upsampled_linear"]


class UpsampledSpiralTables:
    """The composite CSR matrix ``M`` (V_f, V_c*L) and its transpose, batched on demand.

    Args:
        spirals: ``(V_f, L)`` long, the fine level's spirals.
        crow, col, val: CSR arrays of ``U`` (V_f, V_c).
        coarse_vertices: ``V_c``.
    """

    def __init__(self, spirals: Tensor, crow: Tensor, col: Tensor, val: Tensor, coarse_vertices):
        fine, length = (int(s) for s in spirals.shape)
        self.vertices, self.coarse, self.length = fine, int(coarse_vertices), length
        device = spirals.device
        j = spirals.reshape(-1)  # position p = i*L + l reads U's row S_il
        start, count = crow[j], crow[j + 1] - crow[j]
        p = torch.repeat_interleave(torch.arange(j.numel(), device=device), count)
        first = torch.cumsum(count, 0) - count  # the first entry of position p
        e = torch.arange(p.numel(), device=device) - first[p] + start[p]  # entries of U
        dtype = index_dtype(max(p.numel(), self.coarse * length, fine) + 1)
        cols = col[e] * length + p % length  # rows k*L + l of Z, ordered by output i
        self.cols = cols.to(dtype)
        self.vals = val[e]
        self.offsets = torch.zeros(fine + 1, dtype=dtype, device=device)
        self.offsets[1:] = torch.cumsum(count.view(fine, length).sum(1), 0)
        order, self.t_offsets = _transpose_table(self.cols, self.coarse * length)
        outputs = torch.div(p.to(dtype), length, rounding_mode="floor")
        self.t_cols = outputs[order]  # the output i
        self.t_vals = self.vals[order]
        self._batched: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}

    def matmul_csr(self, transpose: bool, batch: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(cols, offsets, values)`` of ``M`` (or ``M^T``) block-diagonal over the batch."""
        key = (transpose, batch)
        if key not in self._batched:
            cols, offsets, vals = (
                (self.t_cols, self.t_offsets, self.t_vals)
                if transpose
                else (self.cols, self.offsets, self.vals)
            )
            source = self.vertices if transpose else self.coarse * self.length
            self._batched = {k: v for k, v in self._batched.items() if k[1] == batch}
            self._batched[key] = (*block_diagonal(cols, offsets, source, batch), vals.repeat(batch))
        return self._batched[key]


def spiral_upsampled_linear(
    x: Tensor, tables: UpsampledSpiralTables, weight: Tensor, bias: Tensor | None
) -> Tensor:
    """``conv(U x)`` in one operator: ``(B, V_c, C_in)`` -> ``(B, V_f, C_out)``.

    Args:
        x: ``(B, V_c, C_in)`` coarse features.
        tables: :class:`UpsampledSpiralTables` of the fine spirals and ``U``.
        weight: ``(C_out, L*C_in)`` (``nn.Linear`` layout, position ``l*C_in + c``).
        bias: ``(C_out,)`` or ``None``.
    """
    return spiral_matmul_gather(x, tables, weight, bias)
