r"""Graph attention on dense batched graphs (Velickovic et al., ICLR 2018).

.. math::
    h_i = W x_i, \quad e_{ij} = \mathrm{LeakyReLU}_{0.2}(a_s^\top h_i + a_d^\top h_j),
    \quad \alpha_{ij} = \mathrm{softmax}_{j \in N(i) \cup \{i\}}(e_{ij}),
    \quad x'_i = \Vert_{k} \sum_j \alpha^k_{ij} h^k_j \ (\text{or the mean over heads } k)

Neighbours are the nonzero entries of the adjacency (its weights are not used, as in GAT);
self-loops are added.

Shapes:
    - x: ``(B, n, C_in)``; adjacency: ``(B, n, n)``
    - output: ``(B, n, heads * C_out)`` (concat) or ``(B, n, C_out)`` (mean)
    - attention (``return_attention=True``): ``(B, heads, n, n)``, rows sum to 1
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError

__all__ = ["GATLayer"]


class GATLayer(nn.Module):
    """Multi-head dense batched graph attention layer.

    Args:
        in_channels: node feature channels ``C_in``.
        out_channels: channels per head ``C_out``.
        heads: attention heads.
        concat: concatenate the heads (else average them).
        negative_slope: LeakyReLU slope of the scores.
        dropout: dropout on the attention coefficients (training only).
        bias: add a learnable bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.linear = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(heads, out_channels))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        out = heads * out_channels if concat else out_channels
        self.bias = nn.Parameter(torch.zeros(out)) if bias else None

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, n, C_in), (B, n, n) -> (B, n, C')`` and optionally the attention."""
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise ConfigError(
                f"GATLayer: expected x (B, n, {self.in_channels}), got {tuple(x.shape)}"
            )
        batch, n, _ = x.shape
        if adjacency.shape != (batch, n, n):
            raise ConfigError(
                f"GATLayer: adjacency {tuple(adjacency.shape)} does not match x {tuple(x.shape)}"
            )
        h = self.linear(x).view(batch, n, self.heads, self.out_channels)  # (B, n, K, F)
        src = (h * self.att_src).sum(-1)  # (B, n, K): a_s . h_i
        dst = (h * self.att_dst).sum(-1)  # (B, n, K): a_d . h_j
        e = F.leaky_relu(
            src.permute(0, 2, 1)[..., :, None] + dst.permute(0, 2, 1)[..., None, :],
            self.negative_slope,
        )  # (B, K, n, n)
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        mask = (adjacency != 0) | eye  # (B, n, n)
        e = e.masked_fill(~mask[:, None], float("-inf"))
        alpha = torch.softmax(e, dim=-1)
        alpha_dropped = F.dropout(alpha, self.dropout, training=self.training)
        out = torch.einsum("bkij,bjkf->bikf", alpha_dropped, h)  # (B, n, K, F)
        out = out.reshape(batch, n, -1) if self.concat else out.mean(dim=2)
        if self.bias is not None:
            out = out + self.bias
        return (out, alpha) if return_attention else out

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"{self.in_channels}, {self.out_channels}, heads={self.heads}, "
            f"concat={self.concat}, negative_slope={self.negative_slope}"
        )
