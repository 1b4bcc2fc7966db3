r"""Graph projection of pixels onto learned anchors (Beyond Grids; GloRe).

Li & Gupta, NeurIPS 2018; Chen et al., CVPR 2019.

Pixels are soft-assigned to ``V`` learned anchors ``w_v`` (with learned scales ``sigma_v``),
the graph of the ``V`` nodes is reasoned over by a GCN, and the node features are
projected back to the pixels with the same assignment:

.. math::
    q_{pv} = \mathrm{softmax}_v\left(-\tfrac{\|(x_p - w_v) / \sigma_v\|^2}{2}\right), \quad
    z_v = \frac{\sum_p q_{pv} (x_p - w_v) / \sigma_v}{\sum_p q_{pv}}, \quad
    A = \max(0, Z Z^\top), \quad Z' = \mathrm{ReLU}(\mathrm{GCN}(Z, A)), \quad
    y_p = x_p + W_o \sum_v q_{pv} z'_v

Shapes:
    - x: ``(B, C, H, W)``; output: ``(B, C, H, W)``; nodes ``(B, V, C)``; assignment
      ``(B, H*W, V)``
"""

from __future__ import annotations

import torch
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.adjacency import feature_similarity
from deep3dmm.image_graph.gcn import GCNLayer

__all__ = ["GraphProjection"]


class GraphProjection(nn.Module):
    """Project pixels to a graph of ``num_nodes`` anchors, reason with a GCN, project back.

    Args:
        in_channels: feature channels ``C``.
        num_nodes: anchors ``V``.
    """

    def __init__(self, in_channels: int, num_nodes: int = 8):
        super().__init__()
        self.in_channels = in_channels
        self.num_nodes = num_nodes
        self.anchors = nn.Parameter(torch.randn(num_nodes, in_channels) * 0.1)
        self.log_sigma = nn.Parameter(torch.zeros(num_nodes, in_channels))
        self.gcn = GCNLayer(in_channels, in_channels)
        self.out = nn.Conv2d(in_channels, in_channels, 1)
        self.bn = nn.BatchNorm2d(in_channels)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Assignment ``q (B, H*W, V)`` and node features ``z (B, V, C)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"GraphProjection: expected x (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        pixels = x.flatten(2).transpose(1, 2)  # (B, P, C)
        residual = (pixels[:, :, None] - self.anchors) / self.log_sigma.exp()  # (B, P, V, C)
        q = torch.softmax(-0.5 * residual.pow(2).sum(-1), dim=-1)  # (B, P, V)
        z = (q[..., None] * residual).sum(1) / (q.sum(1)[..., None] + 1e-6)  # (B, V, C)
        return q, z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)`` with a residual connection."""
        q, z = self.project(x)
        z = torch.relu(self.gcn(z, feature_similarity(z)))
        back = (q @ z).transpose(1, 2).reshape_as(x)  # (B, C, H, W)
        return x + self.bn(self.out(back))

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"in_channels={self.in_channels}, num_nodes={self.num_nodes}"
