r"""Differentiable pooling on dense batched graphs (DiffPool, Ying et al., NeurIPS 2018).

.. math::
    S = \mathrm{softmax}(\mathrm{GNN}_{pool}(A, X)), \quad Z = \mathrm{GNN}_{embed}(A, X),
    \quad X' = S^\top Z, \quad A' = S^\top A S

Auxiliary losses: link prediction ``||A - S S^T||_F / (B n^2)`` (Frobenius norm over the
whole batch) and the mean assignment
entropy ``-1/(B n) sum_{b,i} sum_c S_ic log S_ic`` (both as in PyTorch Geometric's
``dense_diff_pool``).

Shapes:
    - x: ``(B, n, C_in)``; adjacency: ``(B, n, n)``
    - output: ``x' (B, K, C_out)``, ``A' (B, K, K)``, assignment ``S (B, n, K)``
"""

from __future__ import annotations

import torch
from torch import nn

from deep3dmm.image_graph.gcn import GCNLayer

__all__ = ["DenseDiffPool", "dense_diff_pool"]


def dense_diff_pool(
    x: torch.Tensor, adjacency: torch.Tensor, assign_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pool ``x (B, n, C)`` and ``adjacency (B, n, n)`` by ``softmax(assign_logits (B, n, K))``.

    Returns:
        ``(x' (B, K, C), A' (B, K, K), link_loss, entropy_loss)``.
    """
    s = torch.softmax(assign_logits, dim=-1)
    st = s.transpose(1, 2)
    pooled_x = st @ x
    pooled_adj = st @ adjacency @ s
    link = torch.linalg.vector_norm(adjacency - s @ st) / adjacency.numel()
    entropy = (-s * torch.log(s + 1e-15)).sum(-1).mean()
    return pooled_x, pooled_adj, link, entropy


class DenseDiffPool(nn.Module):
    """A DiffPool block: an embedding GCN and an assignment GCN over the same graph.

    Args:
        in_channels: node channels ``C_in``.
        out_channels: pooled node channels ``C_out``.
        num_clusters: pooled graph size ``K``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_clusters: int):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_clusters = num_clusters
        self.embed = GCNLayer(in_channels, out_channels)
        self.assign = GCNLayer(in_channels, num_clusters)
        self.assignment: torch.Tensor | None = None  # (B, n, K) of the last call, detached

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x', A', auxiliary loss = link + entropy)``."""
        z = torch.relu(self.embed(x, adjacency))
        logits = self.assign(x, adjacency)
        pooled_x, pooled_adj, link, entropy = dense_diff_pool(z, adjacency, logits)
        self.assignment = torch.softmax(logits, dim=-1).detach()
        return pooled_x, pooled_adj, link + entropy

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"{self.in_channels}, {self.out_channels}, num_clusters={self.num_clusters}"
