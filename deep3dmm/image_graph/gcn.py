r"""Graph convolution on dense batched graphs (Kipf & Welling, ICLR 2017).

.. math::
    X' = \hat{A} X W + b, \qquad \hat{A} = D^{-1/2} (A + I) D^{-1/2}

Shapes:
    - x: ``(B, n, C_in)``; adjacency: ``(B, n, n)`` (raw, normalised inside unless
      ``normalize=False``)
    - output: ``(B, n, C_out)``
"""

from __future__ import annotations

import torch
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.adjacency import symmetric_normalize

__all__ = ["GCNLayer"]


class GCNLayer(nn.Module):
    """Dense batched GCN layer.

    Args:
        in_channels: node feature channels ``C_in``.
        out_channels: output channels ``C_out``.
        normalize: apply :func:`symmetric_normalize` (with self-loops) to the adjacency.
        bias: add a learnable bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, normalize: bool = True, bias: bool = True
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``(B, n, C_in), (B, n, n) -> (B, n, C_out)``."""
        if x.dim() != 3 or x.shape[-1] != self.in_channels:
            raise ConfigError(
                f"GCNLayer: expected x (B, n, {self.in_channels}), got {tuple(x.shape)}"
            )
        if adjacency.shape != (x.shape[0], x.shape[1], x.shape[1]):
            raise ConfigError(
                f"GCNLayer: adjacency {tuple(adjacency.shape)} does not match x {tuple(x.shape)}"
            )
        a = symmetric_normalize(adjacency) if self.normalize else adjacency
        out = a @ self.linear(x)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"{self.in_channels}, {self.out_channels}, normalize={self.normalize}"
