r"""An export-friendly copy of a trained :class:`~deep3dmm.nn.MeshAutoencoder`.

Sparse products (pooling by D, U or a frozen attention mapping; the Chebyshev Laplacian)
break ONNX export in most mesh codebases (scatter and sparse tensors have no standard ONNX
op). Here every sparse matrix :math:`M` (``R x N``) becomes either a dense ``MatMul`` (when
``R * N`` is small) or a gather + weighted sum over a fixed-width neighbour table: with
:math:`w` the widest row, ``index (R, w)`` and ``weight (R, w)`` (short rows padded with
weight 0 on vertex 0),

.. math:: y_{b,i,c} = \sum_{j < w} \mathrm{weight}_{ij}\, x_{b,\,\mathrm{index}_{ij},\,c}

which exports as ``Gather``, ``Reshape``, ``Mul`` and ``ReduceSum``. Spiral convolutions are a
``Gather`` and a ``MatMul`` already.

The copy is built only from the live model's public state: its spiral index buffers, the
``Linear`` / Chebyshev weights, each pooling layer's ``mapping()`` after
``freeze_pooling()``, the hierarchy's Laplacians and the activation module. It does not read
layer internals, so it keeps working when their implementation changes; parity with the live
model is what the tests check.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from deep3dmm.errors import ConfigError

__all__ = [
    "DenseMap",
    "ExportableAutoencoder",
    "ExportCheb",
    "ExportPCA",
    "ExportSpiral",
    "NeighbourSum",
    "NeighbourTable",
    "exportable",
]

DENSE_MAX = 65536  # matrices with at most this many entries are exported dense


def _scipy(matrix) -> sp.csr_matrix:
    """A scipy CSR copy (float64) of a scipy or torch (dense, COO or CSR) matrix."""
    if isinstance(matrix, Tensor):
        matrix = matrix.detach().cpu()
        if matrix.layout == torch.sparse_csr:
            matrix = matrix.to_sparse_coo()
        if matrix.layout == torch.sparse_coo:
            matrix = matrix.coalesce()
            rows, cols = matrix.indices().numpy()
            return sp.csr_matrix(
                (matrix.values().double().numpy(), (rows, cols)), shape=tuple(matrix.shape)
            )
        return sp.csr_matrix(matrix.double().numpy())
    csr = sp.csr_matrix(matrix, dtype=np.float64)
    csr.sum_duplicates()
    return csr


class NeighbourTable(nn.Module):
    r"""Rows of a sparse ``M`` as a gather + weighted sum over one fixed-width table.

    Args:
        index: ``(R, w)`` column of each entry (padding: any valid column).
        weight: ``(R, w)`` value of each entry (padding: 0).

    Shapes:
        - input: ``(B, N, C)``
        - output: ``(B, R, C)``
    """

    def __init__(self, index: np.ndarray, weight: np.ndarray):
        super().__init__()
        self.rows, self.width = (int(s) for s in index.shape)
        self.register_buffer("index", torch.from_numpy(index.reshape(-1)))  # (R*w,)
        self.register_buffer("weight", torch.from_numpy(weight)[:, :, None])  # (R, w, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(B, N, C)`` to ``(B, R, C)``."""
        gathered = x.index_select(1, self.index)  # (B, R*w, C)
        gathered = gathered.reshape(-1, self.rows, self.width, x.shape[2])  # (B, R, w, C)
        return (gathered * self.weight).sum(2)

    def extra_repr(self) -> str:
        """Key sizes for ``repr``."""
        return f"rows={self.rows}, width={self.width}"


class NeighbourSum(nn.Module):
    r"""``y = M x`` for a sparse ``M``: neighbour tables of rows grouped by width.

    Rows are grouped by their entry count rounded up to a power of two, each group padded
    to its own width (a few high-valence vertices would otherwise widen every row: the COMA
    Laplacian has rows of 7 and of 32 entries); the groups' outputs are concatenated and put
    back in row order by one ``Gather``.

    Args:
        matrix: ``(R, N)`` scipy or torch sparse matrix.

    Shapes:
        - input: ``(B, N, C)``
        - output: ``(B, R, C)``
    """

    def __init__(self, matrix):
        super().__init__()
        csr = _scipy(matrix)
        rows, self.in_size = int(csr.shape[0]), int(csr.shape[1])
        counts = np.diff(csr.indptr)  # (R,)
        group = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)  # (R,)
        order = np.argsort(group, kind="stable")  # rows, group by group
        tables = []
        for g in np.unique(group):
            members = order[group[order] == g]
            width = max(int(counts[members].max()), 1)
            sub = csr[members]
            row = np.repeat(np.arange(len(members)), np.diff(sub.indptr))
            slot = np.arange(sub.nnz) - sub.indptr[row]
            index = np.zeros((len(members), width), dtype=np.int64)
            weight = np.zeros((len(members), width), dtype=np.float32)
            index[row, slot], weight[row, slot] = sub.indices, sub.data
            tables.append(NeighbourTable(index, weight))
        self.tables = nn.ModuleList(tables)
        self.rows = rows
        self.widths = [t.width for t in tables]
        self.reorder = len(tables) > 1
        inverse = np.empty(rows, dtype=np.int64)
        inverse[order] = np.arange(rows)
        self.register_buffer("inverse", torch.from_numpy(inverse))  # (R,): row -> stacked row

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(B, N, C)`` to ``(B, R, C)``."""
        if not self.reorder:
            return self.tables[0](x)
        parts = [table(x) for table in self.tables]
        return torch.cat(parts, 1).index_select(1, self.inverse)

    def extra_repr(self) -> str:
        """Key sizes for ``repr``."""
        return f"rows={self.rows}, in_size={self.in_size}, widths={self.widths}"


class DenseMap(nn.Module):
    """``y = M x`` for a small ``M`` stored dense (one ``MatMul``).

    Args:
        matrix: ``(R, N)`` scipy or torch matrix.

    Shapes:
        - input: ``(B, N, C)``
        - output: ``(B, R, C)``
    """

    def __init__(self, matrix):
        super().__init__()
        dense = _scipy(matrix).toarray().astype(np.float32)
        self.register_buffer("matrix", torch.from_numpy(dense))  # (R, N)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape ``(B, N, C)`` to ``(B, R, C)``."""
        return torch.matmul(self.matrix, x)

    def extra_repr(self) -> str:
        """Key sizes for ``repr``."""
        return f"rows={self.matrix.shape[0]}, in_size={self.matrix.shape[1]}"


def sparse_operator(matrix, *, dense_max: int = DENSE_MAX) -> nn.Module:
    """:class:`DenseMap` when ``R * N <= dense_max``, else :class:`NeighbourSum`."""
    rows, cols = (int(s) for s in matrix.shape)
    return DenseMap(matrix) if rows * cols <= dense_max else NeighbourSum(matrix)


class ExportSpiral(nn.Module):
    r"""Spiral convolution :math:`y_i = W [x_{s(i,0)} \| \dots \| x_{s(i,L-1)}] + b`.

    Gathers the spirals then multiplies (``C_in <= C_out``), or multiplies by the rearranged
    weight first and gathers ``L * C_out`` channels (``C_in > C_out``); the same map.

    Args:
        spirals: ``(V, L)`` indices.
        weight: ``(C_out, L * C_in)``, the ``nn.Linear`` weight.
        bias: ``(C_out,)`` or ``None``.

    Shapes:
        - input: ``(B, V, C_in)``
        - output: ``(B, V, C_out)``
    """

    def __init__(self, spirals: Tensor, weight: Tensor, bias: Tensor | None):
        super().__init__()
        spirals = spirals.detach().cpu().long()
        self.vertices, self.length = (int(s) for s in spirals.shape)
        weight = weight.detach().cpu().float()
        self.out_channels = int(weight.shape[0])
        self.in_channels = int(weight.shape[1]) // self.length
        self.matmul_first = self.in_channels > self.out_channels
        o, length, c = self.out_channels, self.length, self.in_channels
        if self.matmul_first:
            rows = spirals * length + torch.arange(length)  # (V, L): row s(i,l)*L + l of Z
            self.register_buffer("index", rows.reshape(-1))
            rearranged = weight.view(o, length, c).permute(2, 1, 0).reshape(c, length * o)
            self.register_buffer("weight", rearranged.contiguous())  # (C_in, L*C_out)
        else:
            self.register_buffer("index", spirals.reshape(-1))  # (V*L,)
            self.register_buffer("weight", weight.t().contiguous())  # (L*C_in, C_out)
        zero = torch.zeros(o)
        self.register_buffer("bias", zero if bias is None else bias.detach().cpu().float())

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolution to ``x`` of shape ``(B, V, C_in)``."""
        v, length, o = self.vertices, self.length, self.out_channels
        if self.matmul_first:
            z = torch.matmul(x, self.weight).reshape(-1, v * length, o)  # (B, V*L, C_out)
            y = z.index_select(1, self.index).reshape(-1, v, length, o).sum(2)  # (B, V, C_out)
            return y + self.bias
        gathered = x.index_select(1, self.index).reshape(-1, v, length * self.in_channels)
        return torch.matmul(gathered, self.weight) + self.bias  # (B, V, C_out)

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"{self.in_channels}, {self.out_channels}, vertices={self.vertices}, "
            f"spiral_length={self.length}"
        )


class ExportCheb(nn.Module):
    r"""Chebyshev convolution :math:`Y = \sum_k T_k(\tilde L) X W_k + b` (COMA).

    Args:
        laplacian: ``(V, V)`` rescaled Laplacian (scipy or torch).
        weight: ``(K, C_in, C_out)``.
        bias: ``(C_out,)`` or ``None``.
        dense_max: see :func:`sparse_operator`.

    Shapes:
        - input: ``(B, V, C_in)``
        - output: ``(B, V, C_out)``
    """

    def __init__(
        self, laplacian, weight: Tensor, bias: Tensor | None, *, dense_max: int = DENSE_MAX
    ):
        super().__init__()
        weight = weight.detach().cpu().float()
        self.K, self.in_channels, self.out_channels = (int(s) for s in weight.shape)
        self.laplacian = sparse_operator(laplacian, dense_max=dense_max)
        self.register_buffer("weight", weight.reshape(self.K * self.in_channels, -1))
        zero = torch.zeros(self.out_channels)
        self.register_buffer("bias", zero if bias is None else bias.detach().cpu().float())

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolution to ``x`` of shape ``(B, V, C_in)``."""
        terms = [x]
        if self.K > 1:
            t0, t1 = x, self.laplacian(x)
            terms.append(t1)
            for _ in range(2, self.K):
                t0, t1 = t1, 2.0 * self.laplacian(t1) - t0
                terms.append(t1)
        stacked = torch.cat(terms, 2)  # (B, V, K*C_in), term-major as the live layer
        return torch.matmul(stacked, self.weight) + self.bias

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return f"{self.in_channels}, {self.out_channels}, K={self.K}"


def _conv(layer: nn.Module, laplacian, dense_max: int) -> nn.Module:
    """The export form of a live spiral or Chebyshev layer."""
    from deep3dmm.nn import ChebConv, SpiralConv

    if isinstance(layer, SpiralConv):
        return ExportSpiral(layer.spirals, layer.linear.weight, layer.linear.bias)
    if isinstance(layer, ChebConv):
        return ExportCheb(laplacian, layer.weight, layer.bias, dense_max=dense_max)
    raise ConfigError(f"export: no export form for convolution layer {type(layer).__name__}")


def _pool(layer: nn.Module, dense_max: int) -> nn.Module:
    """The export form of a (frozen) pooling layer, from its public ``mapping()``."""
    if not hasattr(layer, "mapping"):
        raise ConfigError(f"export: pooling layer {type(layer).__name__} has no mapping()")
    return sparse_operator(layer.mapping(), dense_max=dense_max)


class ExportableAutoencoder(nn.Module):
    """The autoencoder rebuilt from export-friendly layers (standard ONNX ops only).

    Build it with :meth:`from_model`; :meth:`encode` / :meth:`decode` / :meth:`forward` match
    the live model's in normalised units.

    Shapes:
        - ``encode``: ``(B, V_0, 3)`` -> ``(B, latent)``
        - ``decode``: ``(B, latent)`` -> ``(B, V_0, 3)``
    """

    def __init__(
        self,
        encoder_convs: list[nn.Module],
        down_pools: list[nn.Module],
        to_latent: nn.Linear,
        from_latent: nn.Linear,
        up_pools: list[nn.Module],
        decoder_convs: list[nn.Module],
        output_conv: nn.Module,
        activation: nn.Module,
        bottleneck: tuple[int, int],
    ):
        super().__init__()
        self.encoder_convs = nn.ModuleList(encoder_convs)
        self.down_pools = nn.ModuleList(down_pools)
        self.to_latent = to_latent
        self.from_latent = from_latent
        self.up_pools = nn.ModuleList(up_pools)
        self.decoder_convs = nn.ModuleList(decoder_convs)
        self.output_conv = output_conv
        self.activation = activation
        self.bottleneck = (int(bottleneck[0]), int(bottleneck[1]))
        self.latent_size = int(to_latent.out_features)

    @classmethod
    def from_model(
        cls, model: nn.Module, hierarchy=None, *, dense_max: int = DENSE_MAX
    ) -> ExportableAutoencoder:
        """Rebuild ``model`` (a :class:`~deep3dmm.nn.MeshAutoencoder`) for export.

        The model is deep-copied and its attention pooling frozen; the original is untouched.

        Args:
            model: the trained autoencoder.
            hierarchy: its ``MeshHierarchy`` (the Laplacians of Chebyshev models).
            dense_max: matrices with at most this many entries become a dense ``MatMul``,
                larger ones a neighbour table (0: always a table).
        """
        from deep3dmm.nn import ChebConv

        live = copy.deepcopy(model).cpu().float().eval()
        live.freeze_pooling()
        steps = len(live.encoder_convs)
        cheb = any(isinstance(m, ChebConv) for m in live.modules())
        if cheb and hierarchy is None:
            raise ConfigError(
                "export: a Chebyshev model needs its hierarchy (the Laplacians)",
                fix="pass the run's hierarchy (LoadedRun.hierarchy)",
            )

        def laplacian(level: int):
            return hierarchy.laplacian[level] if cheb else None

        with torch.no_grad():
            return cls(
                [
                    _conv(c, laplacian(level), dense_max)
                    for level, c in enumerate(live.encoder_convs)
                ],
                [_pool(p, dense_max) for p in live.down_pools],
                copy.deepcopy(live.to_latent),
                copy.deepcopy(live.from_latent),
                [_pool(p, dense_max) for p in live.up_pools],
                [
                    _conv(c, laplacian(steps - 1 - i), dense_max)
                    for i, c in enumerate(live.decoder_convs)
                ],
                _conv(live.output_conv, laplacian(0), dense_max),
                copy.deepcopy(live.activation),
                tuple(live.bottleneck),
            ).eval()

    def encode(self, x: Tensor) -> Tensor:
        """``(B, V_0, 3)`` normalised meshes -> ``(B, latent)`` codes."""
        for conv, pool in zip(self.encoder_convs, self.down_pools):
            x = pool(self.activation(conv(x)))
        return self.to_latent(x.reshape(-1, self.bottleneck[0] * self.bottleneck[1]))

    def decode(self, z: Tensor) -> Tensor:
        """``(B, latent)`` codes -> ``(B, V_0, 3)`` normalised meshes."""
        x = self.from_latent(z).reshape(-1, self.bottleneck[0], self.bottleneck[1])
        for pool, conv in zip(self.up_pools, self.decoder_convs):
            x = self.activation(conv(pool(x)))
        return self.output_conv(x)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct ``(B, V_0, 3)`` normalised meshes."""
        return self.decode(self.encode(x))


class ExportPCA(nn.Module):
    r"""The linear 3DMM (:class:`~deep3dmm.nn.PCAModel`) from its public buffers.

    :math:`z = C\big((x - m) \odot s\big)`, :math:`\hat x = m + (C^\top z) \oslash s`.

    Shapes:
        - ``encode``: ``(B, V, 3)`` -> ``(B, latent)``; ``decode``: the reverse.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        components = model.components.detach().cpu().float()  # (latent, 3V)
        self.latent_size, dim = (int(s) for s in components.shape)
        self.num_vertices = dim // 3
        self.register_buffer("mean", model.mean.detach().cpu().float().clone())  # (3V,)
        self.register_buffer("scale", model.scale.detach().cpu().float().clone())  # (3V,)
        self.register_buffer("components", components.clone())

    def encode(self, x: Tensor) -> Tensor:
        """``(B, V, 3)`` normalised meshes -> ``(B, latent)`` codes."""
        centred = (x.reshape(-1, 3 * self.num_vertices) - self.mean) * self.scale
        return torch.matmul(centred, self.components.t())

    def decode(self, z: Tensor) -> Tensor:
        """``(B, latent)`` codes -> ``(B, V, 3)`` normalised meshes."""
        flat = self.mean + torch.matmul(z, self.components) / self.scale
        return flat.reshape(-1, self.num_vertices, 3)

    def forward(self, x: Tensor) -> Tensor:
        """Project ``(B, V, 3)`` normalised meshes onto the components."""
        return self.decode(self.encode(x))


def exportable(model: nn.Module, hierarchy=None, *, dense_max: int = DENSE_MAX) -> nn.Module:
    """The export form of any model kind: :class:`ExportPCA` or :class:`ExportableAutoencoder`."""
    if getattr(model, "config", {}).get("kind") == "pca":
        return ExportPCA(model).eval()
    return ExportableAutoencoder.from_model(model, hierarchy, dense_max=dense_max)


class Part(nn.Module):
    """One part of an :class:`ExportableAutoencoder` as a module whose ``forward`` is it.

    Args:
        net: an :class:`ExportableAutoencoder` or :class:`ExportPCA`.
        part: ``"encoder"``, ``"decoder"`` or ``"autoencoder"``.
    """

    def __init__(self, net: nn.Module, part: str):
        super().__init__()
        self.net = net
        self.part = part

    def forward(self, x: Tensor) -> Tensor:
        """Run the part."""
        if self.part == "encoder":
            return self.net.encode(x)
        if self.part == "decoder":
            return self.net.decode(x)
        return self.net(x)
