"""Spiral convolution (SpiralNet++ style)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deep3dmm.errors import ConfigError
from deep3dmm.nn.checks import check_features
from deep3dmm.nn.spiral_chunked import spiral_chunked_linear
from deep3dmm.nn.spiral_gather import SpiralTables, spiral_gather_linear, spiral_matmul_gather
from deep3dmm.nn.spiral_upsampled import UpsampledSpiralTables, spiral_upsampled_linear

__all__ = ["SpiralConv"]


class SpiralConv(nn.Module):
    r"""Spiral convolution.

    Gong et al., "SpiralNet++: A Fast and Highly Efficient Mesh
    Convolution Operator", ICCV Workshops 2019 (after Bouritsas et al., Neural3DMM, ICCV 2019).

    Each vertex :math:`i` has a fixed sequence of :math:`L` vertex indices
    :math:`s(i, 0) = i, s(i, 1), \dots, s(i, L-1)` (centre, then its rings in a consistent
    rotational order). The features along the spiral are concatenated and mixed by one
    linear layer:

    .. math::
        \mathbf{y}_i = W \,\big[\mathbf{x}_{s(i,0)} \,\|\, \dots \,\|\,
        \mathbf{x}_{s(i,L-1)}\big] + \mathbf{b}

    One ``index_select`` gathers all spirals of the batch at once; its backward is a gather
    too (a bag sum over the transposed spiral table, see :mod:`deep3dmm.nn.spiral_gather`),
    not autograd's ``index_add_`` scatter. When ``C_in > C_out`` the same map is evaluated in
    the cheaper order "matmul first, gather-sum second": :math:`Z = X W_r` with :math:`W_r`
    the weight rearranged to ``(C_in, L*C_out)``, then :math:`y_i = \sum_l Z_{s(i,l), l} + b`
    as one bag sum, so the gathered tensor has ``L*C_out`` instead of ``L*C_in`` channels
    (the output layer of the decoder, 32 -> 3, gathers 10x less). On CPU the gather-first
    order runs in cache-sized row chunks (:mod:`deep3dmm.nn.spiral_chunked`): the gathered
    ``(B*V, L*C_in)`` matrix is never written whole, and the backward needs none of it. Both
    orders share the parameters of one ``nn.Linear(L*C_in, C_out)`` (the layout of
    SpiralNet++'s weights). The spiral indices are a buffer, so ``.to(device)`` and
    ``state_dict`` carry them.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out``.
        spirals: ``(V, L)`` integer indices into the level's vertices (row ``i`` starts at ``i``).
        bias: learn an additive bias.

    ``forward(x, rows=r)`` evaluates only the output vertices ``r`` (``y[:, r]`` without the
    others): the encoder's convolution followed by a selection pooling (D keeps some vertices)
    computes just the vertices D keeps. :meth:`upsampled` is ``self(pool(x))`` for the
    decoder's fixed up-sampling U as one operator whose dense product runs on the coarse level
    (:mod:`deep3dmm.nn.spiral_upsampled`).

    Shapes:
        - input: ``(B, V, C_in)``; ``rows``: ``(V_out,)`` long
        - output: ``(B, V, C_out)``, with ``rows`` ``(B, V_out, C_out)``
    """

    def __init__(self, in_channels: int, out_channels: int, spirals: Tensor, *, bias: bool = True):
        super().__init__()
        spirals = torch.as_tensor(spirals, dtype=torch.long)
        if spirals.ndim != 2 or spirals.shape[1] < 1:
            raise ConfigError(
                f"SpiralConv: spirals must be a (V, L) index tensor, got shape "
                f"{tuple(spirals.shape)}",
                fix="pass hierarchy.spirals[level]",
            )
        if spirals.numel() and (int(spirals.min()) < 0 or int(spirals.max()) >= spirals.shape[0]):
            raise ConfigError(
                f"SpiralConv: spiral indices must lie in [0, {spirals.shape[0]}), got "
                f"[{int(spirals.min())}, {int(spirals.max())}]",
                fix="rebuild the spirals for this level's vertices",
            )
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.num_vertices, self.spiral_length = (int(s) for s in spirals.shape)
        self.register_buffer("spirals", spirals.contiguous())
        self.matmul_first = self.in_channels > self.out_channels
        self.linear = nn.Linear(self.in_channels * self.spiral_length, self.out_channels, bias=bias)
        self._tables: tuple[tuple, SpiralTables] | None = None
        self._row_tables: tuple[tuple, Tensor, int, Tensor, SpiralTables] | None = None
        self._up_tables: tuple[tuple, UpsampledSpiralTables] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights, zero bias (as SpiralNet++)."""
        nn.init.xavier_uniform_(self.linear.weight)
        if self.linear.bias is not None:
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """Apply the convolution to ``x`` of shape ``(B, V, C_in)`` (only at ``rows``, if given)."""
        check_features(x, layer="SpiralConv", vertices=self.num_vertices, channels=self.in_channels)
        spirals, tables = (self.spirals, self.tables()) if rows is None else self.row_tables(rows)
        if self.matmul_first:
            return spiral_matmul_gather(x, tables, self.linear.weight, self.linear.bias)
        if x.device.type == "cpu":
            return spiral_chunked_linear(x, tables, self.linear.weight, self.linear.bias)
        return spiral_gather_linear(x, spirals, tables, self.linear.weight, self.linear.bias)

    def upsampled(self, x: Tensor, pool: nn.Module) -> Tensor:
        """``self(pool(x))`` as one matmul-first operator: ``(B, V_c, C_in)`` -> ``(B, V, C_out)``.

        ``pool``: a :class:`~deep3dmm.nn.fixed_pool.FixedPool` onto this level (V_c -> V).

        Raises:
            ConfigError: ``pool`` does not map onto this level's vertices.
        """
        if pool.out_vertices != self.num_vertices:
            raise ConfigError(
                f"SpiralConv.upsampled: the pooling maps onto {pool.out_vertices} vertices, the "
                f"convolution has {self.num_vertices}",
                fix="pass the up-sampling onto this convolution's level",
            )
        check_features(x, layer="SpiralConv", vertices=pool.in_vertices, channels=self.in_channels)
        parts = (pool.matrix_crow, pool.matrix_col, pool.matrix_val)
        key = (*self._spirals_key(), *((t.data_ptr(), _version(t)) for t in parts))
        if self._up_tables is None or self._up_tables[0] != key:
            tables = UpsampledSpiralTables(self.spirals, *parts, pool.in_vertices)
            self._up_tables = (key, tables)
        return spiral_upsampled_linear(x, self._up_tables[1], self.linear.weight, self.linear.bias)

    def _spirals_key(self) -> tuple:
        return (self.spirals.device, self.spirals.data_ptr(), self.spirals._version)

    def tables(self) -> SpiralTables:
        """The transposed spiral tables, rebuilt when the ``spirals`` buffer changes or moves.

        Shared with every convolution of equal spirals (:meth:`SpiralTables.shared`).
        """
        key = self._spirals_key()
        if self._tables is None or self._tables[0] != key:
            self._tables = (key, SpiralTables.shared(self.spirals))
        return self._tables[1]

    def row_tables(self, rows: Tensor) -> tuple[Tensor, SpiralTables]:
        """``(spirals[rows], tables)`` of the outputs ``rows`` alone (cached for one ``rows``)."""
        key = self._spirals_key()
        cached = self._row_tables
        if cached is None or cached[0] != key or not _same(cached[1], cached[2], rows):
            spirals = self.spirals.index_select(0, rows.to(self.spirals.device))
            tables = SpiralTables(spirals, self.num_vertices)
            self._row_tables = cached = (key, rows, _version(rows), spirals, tables)
        return cached[3], cached[4]

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"{self.in_channels}, {self.out_channels}, vertices={self.num_vertices}, "
            f"spiral_length={self.spiral_length}"
        )


def _same(cached: Tensor, version: int, rows: Tensor) -> bool:
    """``rows`` holds the cached indices (the same unmodified tensor, or equal values)."""
    if rows is cached:
        return _version(rows) == version
    return rows.shape == cached.shape and rows.device == cached.device and torch.equal(rows, cached)


def _version(t: Tensor) -> int:
    """In-place modification counter (inference tensors have none, and cannot be modified)."""
    return -1 if t.is_inference() else t._version
