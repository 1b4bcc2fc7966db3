"""Adjacency builders for keypoint graphs, normalisations, and the sparse edge-list form.

Every builder is batched: ``(B, n, d) -> (B, n, n)``, one graph per image (distances are
never taken across the batch), with a zero diagonal (self-loops are added by the
normalisations). Weighted adjacencies:

- inverse distance ``A_ij = 1 / (1 + ||c_i - c_j||)``
- feature similarity ``A_ij = max(0, x_i . x_j)`` (kept non-negative)
- Gaussian kernel ``A_ij = exp(-||c_i - c_j||^2 / (2 sigma^2))``
- k nearest neighbours (binary, symmetrised: ``A = max(K, K^T)``)

Normalisations: symmetric ``D^-1/2 (A + I) D^-1/2`` (Kipf & Welling, ICLR 2017) and row
``D^-1 (A + I)``, with ``D = diag(rowsum(A + I))``.
"""

from __future__ import annotations

import torch

from deep3dmm.errors import ConfigError

__all__ = [
    "inverse_distance",
    "feature_similarity",
    "gaussian_kernel",
    "knn_adjacency",
    "symmetric_normalize",
    "row_normalize",
    "dense_to_edge_index",
    "edge_index_to_dense",
]


def _check(name: str, x: torch.Tensor) -> None:
    if x.dim() != 3:
        raise ConfigError(f"{name}: expected a batch (B, n, d), got {tuple(x.shape)}")


def _zero_diagonal(a: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(a.shape[-1], dtype=torch.bool, device=a.device)
    return a.masked_fill(eye, 0.0)


def inverse_distance(coords: torch.Tensor) -> torch.Tensor:
    """``1 / (1 + ||c_i - c_j||)`` per graph; ``coords (B, n, d) -> (B, n, n)``."""
    _check("inverse_distance", coords)
    return _zero_diagonal(1.0 / (1.0 + torch.cdist(coords, coords)))


def feature_similarity(x: torch.Tensor) -> torch.Tensor:
    """``max(0, X X^T)`` per graph; ``x (B, n, C) -> (B, n, n)``."""
    _check("feature_similarity", x)
    return _zero_diagonal(torch.relu(x @ x.transpose(1, 2)))


def gaussian_kernel(coords: torch.Tensor, *, sigma: float = 2.0) -> torch.Tensor:
    """``exp(-||c_i - c_j||^2 / (2 sigma^2))`` per graph; ``(B, n, d) -> (B, n, n)``."""
    _check("gaussian_kernel", coords)
    if sigma <= 0:
        raise ConfigError(f"gaussian_kernel: sigma must be positive, got {sigma}")
    d2 = (coords[:, :, None] - coords[:, None]).pow(2).sum(-1)
    return _zero_diagonal(torch.exp(-d2 / (2 * sigma**2)))


def knn_adjacency(x: torch.Tensor, *, k: int = 4, symmetric: bool = True) -> torch.Tensor:
    """Binary k-nearest-neighbour graph (self excluded); ``(B, n, d) -> (B, n, n)``.

    Row ``i`` marks the ``k`` points closest to ``i``; ``symmetric`` takes ``max(K, K^T)``.
    """
    _check("knn_adjacency", x)
    n = x.shape[1]
    if not 1 <= k < n:
        raise ConfigError(f"knn_adjacency: need 1 <= k < n={n}, got k={k}")
    dist = torch.cdist(x, x)
    dist = dist.masked_fill(torch.eye(n, dtype=torch.bool, device=x.device), float("inf"))
    nearest = dist.topk(k, dim=-1, largest=False).indices  # (B, n, k)
    a = torch.zeros_like(dist).scatter_(-1, nearest, 1.0)
    return torch.maximum(a, a.transpose(1, 2)) if symmetric else a


def _with_self_loops(a: torch.Tensor, add_self_loops: bool) -> torch.Tensor:
    if a.dim() != 3 or a.shape[1] != a.shape[2]:
        raise ConfigError(f"expected adjacency (B, n, n), got {tuple(a.shape)}")
    if add_self_loops:
        a = a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return a


def symmetric_normalize(a: torch.Tensor, *, add_self_loops: bool = True) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` per graph (isolated nodes without loops stay zero)."""
    a = _with_self_loops(a, add_self_loops)
    deg = a.sum(-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    return inv_sqrt[:, :, None] * a * inv_sqrt[:, None, :]


def row_normalize(a: torch.Tensor, *, add_self_loops: bool = True) -> torch.Tensor:
    """``D^-1 (A + I)`` per graph: each non-empty row sums to 1."""
    a = _with_self_loops(a, add_self_loops)
    deg = a.sum(-1, keepdim=True)
    return torch.where(deg > 0, a / deg.clamp(min=1e-12), torch.zeros_like(a))


def dense_to_edge_index(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched dense ``(B, n, n)`` -> the disjoint union as an edge list.

    Returns:
        ``edge_index (2, E)`` (source row ``b*n + i``, target ``b*n + j`` for each nonzero
        ``A[b, i, j]``) and ``edge_weight (E,)``, in the PyTorch-Geometric convention.
    """
    _with_self_loops(a, False)
    b, i, j = a.nonzero(as_tuple=True)
    n = a.shape[1]
    return torch.stack((b * n + i, b * n + j)), a[b, i, j]


def edge_index_to_dense(
    edge_index: torch.Tensor, edge_weight: torch.Tensor | None, batch_size: int, n: int
) -> torch.Tensor:
    """Inverse of :func:`dense_to_edge_index`: ``(2, E)`` over ``B*n`` nodes -> ``(B, n, n)``.

    Duplicate edges are summed; edges across graphs are rejected.
    """
    src, dst = edge_index
    if edge_index.numel() and (src // n != dst // n).any():
        raise ConfigError("edge_index_to_dense: an edge joins two different graphs of the batch")
    if edge_weight is None:
        edge_weight = torch.ones(src.shape[0])
    out = torch.zeros(batch_size * n * n, dtype=edge_weight.dtype, device=edge_weight.device)
    flat = (src // n) * n * n + (src % n) * n + dst % n
    return out.index_add_(0, flat, edge_weight).view(batch_size, n, n)
