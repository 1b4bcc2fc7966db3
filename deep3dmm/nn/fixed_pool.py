"""Fixed pooling: a constant sparse mapping between two mesh levels (COMA / Neural3DMM)."""

from __future__ import annotations

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
        a = csr_from_buffers(self, "matrix")
        a_t = csr_from_buffers(self, "matrix", transpose=True)
        y = constant_spmm(a, a_t, to_vertex_major(x))  # (V_out, B*C)
        return from_vertex_major(y, x.shape[0])

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_vertices={self.in_vertices}, out_vertices={self.out_vertices}"
