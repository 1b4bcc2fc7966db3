"""Fixed pooling: a constant sparse mapping between two mesh levels (COMA / Neural3DMM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deep3dmm.nn.checks import check_features
from deep3dmm.nn.sparse import (
    constant_spmm,
    csr_from_buffers,
    from_vertex_major,
    register_csr,
    to_vertex_major,
)

__all__ = ["FixedPool"]


class FixedPool(nn.Module):
    r"""Pooling by a constant sparse matrix.

    As in COMA (Ranjan et al., ECCV 2018) and Neural3DMM (Bouritsas et al., ICCV 2019).

    .. math::
        Y_b = M X_b \quad\text{for every sample } b

    with :math:`M` the down-sampling matrix D (``V_out x V_in``, one 1 per row, the surviving
    vertices) or the up-sampling matrix U (barycentric weights on the coarse surface). The
    product runs once for the whole batch on vertex-major ``(V, B*C)`` features; its backward
    is one product with the stored transpose.

    Args:
        matrix: ``(V_out, V_in)`` scipy sparse (or torch) mapping.

    Shapes:
        - input: ``(B, V_in, C)``
        - output: ``(B, V_out, C)``
    """

    def __init__(self, matrix):
        super().__init__()
        self.out_vertices, self.in_vertices = (int(s) for s in matrix.shape)
        register_csr(self, "matrix", matrix)

    def mapping(self):
        """The mapping ``M`` as a sparse CSR tensor ``(V_out, V_in)``."""
        return csr_from_buffers(self, "matrix")

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(B, V_in, C)`` to ``(B, V_out, C)``."""
        check_features(x, layer=type(self).__name__, vertices=self.in_vertices, kind="pooling")
        if x.device.type == "cpu" and x.dtype == torch.float32:
            forward = self._batched_csr("matrix", x.shape[0])
            backward = self._batched_csr("matrix_t", x.shape[0])
            return _BatchedBagSum.apply(x, forward, backward, self.out_vertices)
        a = csr_from_buffers(self, "matrix")
        a_t = csr_from_buffers(self, "matrix", transpose=True)
        y = constant_spmm(a, a_t, to_vertex_major(x))  # (V_out, B*C)
        return from_vertex_major(y, x.shape[0])

    def selection(self) -> Tensor | None:
        """The kept vertices ``(V_out,)`` when ``M`` selects, else ``None``.

        ``M`` selects when every row holds one entry equal to 1 (``M x = x[kept]``: D of a
        COMA hierarchy). Cached while the buffers are unchanged.
        """
        crow, col, val = self.matrix_crow, self.matrix_col, self.matrix_val
        key = (crow.data_ptr(), col.data_ptr(), val.data_ptr(), col._version, val._version)
        cached = self.__dict__.get("_selection")
        if cached is None or cached[0] != key:
            ones = bool((crow.diff() == 1).all()) and bool((val == 1).all())
            with torch.inference_mode(False):  # a normal tensor even when first called there
                cached = self._selection = (key, col.clone() if ones else None)
        return cached[1]

    def _batched_csr(self, name: str, batch: int) -> tuple[Tensor, Tensor, Tensor]:
        """CSR arrays of ``name`` repeated for ``batch`` samples (block diagonal), cached."""
        crow, col, val = (getattr(self, f"{name}_{part}") for part in ("crow", "col", "val"))
        key = (name, batch, crow.data_ptr(), col.data_ptr(), val.data_ptr(), val._version)
        cache = self.__dict__.setdefault("_batched", {})
        if key not in cache:
            shift = torch.arange(batch, device=col.device)
            sources = self.in_vertices if name == "matrix" else self.out_vertices
            cols = (col[None, :] + shift[:, None] * sources).reshape(-1)
            starts = (crow[None, :-1] + shift[:, None] * col.numel()).reshape(-1)
            end = torch.tensor([batch * col.numel()], device=col.device)
            for old in [k for k in cache if k[0] == name]:
                del cache[old]
            cache[key] = (cols, torch.cat([starts, end]), val.repeat(batch))
        return cache[key]

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_vertices={self.in_vertices}, out_vertices={self.out_vertices}"


def _bag_sum(x: Tensor, csr: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Rows ``sum_e val_e x[col_e]`` of a (block-diagonal) CSR product on ``(N, C)`` rows."""
    cols, offsets, values = csr
    return F.embedding_bag(
        cols, x, offsets, mode="sum", per_sample_weights=values, include_last_offset=True
    )


class _BatchedBagSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, forward, backward, out_vertices):
        b, v, c = x.shape
        ctx.backward_csr, ctx.shape = backward, (b, v, c)
        return _bag_sum(x.reshape(b * v, c).contiguous(), forward).view(b, out_vertices, c)

    @staticmethod
    def backward(ctx, grad):
        b, v, c = ctx.shape
        grad = grad.reshape(-1, c).contiguous()
        return _bag_sum(grad, ctx.backward_csr).view(b, v, c), None, None, None
