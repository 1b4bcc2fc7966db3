"""Chebyshev spectral graph convolution (COMA)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from deep3dmm.errors import ConfigError
from deep3dmm.nn.checks import check_features
from deep3dmm.nn.sparse import constant_spmm, csr_from_buffers, register_csr

__all__ = ["ChebConv"]


class ChebConv(nn.Module):
    r"""Chebyshev spectral graph convolution.

    Defferrard et al. (NeurIPS 2016) as used by COMA (Ranjan et al., "Generating 3D Faces
    using Convolutional Mesh Autoencoders", ECCV 2018).

    With the rescaled Laplacian :math:`\tilde L = 2L/\lambda_{max} - I` (eigenvalues in
    [-1, 1]; COMA uses the normalised Laplacian with :math:`\lambda_{max} = 2`):

    .. math::
        T_0 = X,\quad T_1 = \tilde L X,\quad T_k = 2 \tilde L T_{k-1} - T_{k-2},\qquad
        Y = \sum_{k=0}^{K-1} T_k W_k + b

    The recursion runs on vertex-major ``(V, B*C)`` features, so each step is one sparse
    CSR product for the whole batch; the ``K`` terms are then mixed by one dense matmul.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        laplacian: ``(V, V)`` rescaled symmetric Laplacian (scipy sparse or torch).
        K: number of Chebyshev terms (polynomial order ``K - 1``).
        bias: learn an additive bias.

    Shapes:
        - input: ``(B, V, C_in)``
        - output: ``(B, V, C_out)``
    """

    def __init__(
        self, in_channels: int, out_channels: int, laplacian, *, K: int = 6, bias: bool = True
    ):
        super().__init__()
        if int(K) < 1:
            raise ConfigError(f"ChebConv: K must be >= 1, got {K}", fix="use K=6 as COMA")
        if laplacian.shape[0] != laplacian.shape[1]:
            raise ConfigError(
                f"ChebConv: laplacian must be square, got shape {tuple(laplacian.shape)}",
                fix="pass hierarchy.laplacian[level]",
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.K = int(K)
        self.num_vertices = int(laplacian.shape[0])
        register_csr(self, "laplacian", laplacian, transpose=False)
        self.weight = nn.Parameter(torch.empty(self.K, self.in_channels, self.out_channels))
        self.bias = nn.Parameter(torch.empty(self.out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights per term, zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolution to ``x`` of shape ``(B, V, C_in)``."""
        check_features(x, layer="ChebConv", vertices=self.num_vertices, channels=self.in_channels)
        b, v, c = x.shape
        lap = csr_from_buffers(self, "laplacian")
        t0 = x.transpose(0, 1).reshape(v, b * c)  # (V, B*C)
        terms = [t0]
        if self.K > 1:
            t1 = constant_spmm(lap, lap, t0)  # symmetric: L^T = L
            terms.append(t1)
            for _ in range(2, self.K):
                t2 = 2.0 * constant_spmm(lap, lap, t1) - t0
                terms.append(t2)
                t0, t1 = t1, t2
        stacked = torch.stack(terms, 0).view(self.K, v, b, c)  # (K, V, B, C)
        stacked = stacked.permute(2, 1, 0, 3).reshape(b, v, self.K * c)  # (B, V, K*C)
        out = stacked @ self.weight.reshape(self.K * c, self.out_channels)  # (B, V, C_out)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"{self.in_channels}, {self.out_channels}, vertices={self.num_vertices}, K={self.K}"
