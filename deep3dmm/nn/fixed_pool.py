"""Fixed pooling: a constant sparse mapping between two mesh levels (COMA / Neural3DMM)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deep3dmm.nn.checks import check_features
from deep3dmm.nn.sparse import batched_constant_spmm, csr_from_buffers, register_csr

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
        return batched_constant_spmm(self, "matrix", x)

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

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_vertices={self.in_vertices}, out_vertices={self.out_vertices}"
