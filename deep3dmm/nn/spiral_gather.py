r"""The spiral convolution's gather + linear map as autograd functions whose backward gathers.

With spirals :math:`S` (V, L) and weight :math:`W = [W_0 | \dots | W_{L-1}]` (C_out, L*C_in),
the layer is :math:`y_{b,i} = \sum_l W_l x_{b, S_{il}} + \mathrm{bias}`. Autograd through
``index_select`` returns the input gradient by ``index_add_`` (a scatter into a zeroed
tensor); here the transposed spiral table, a CSR list of the positions ``(i, l)`` with
:math:`S_{il} = j` for every vertex :math:`j`, turns it into a gather: one
``F.embedding_bag`` sum per call, no zero fill, no write conflicts.

Two evaluation orders share the parameters (``SpiralConv`` picks the cheaper):

- gather first: :math:`G = x[:, S]` (B*V, L*C_in), :math:`y = G W^\top`; backward
  :math:`\partial W = \partial y^\top G`, :math:`\partial G = \partial y\, W`,
  :math:`\partial x_j = \sum_{S_{il} = j} \partial G_{il}`.
- matmul first (``C_in > C_out``): :math:`Z = x W_r` with :math:`W_r` (C_in, L*C_out),
  :math:`y_i = \sum_l Z_{S_{il}, l}` as one bag sum; backward
  :math:`\partial Z_{j, l} = \sum_{S_{il} = j} \partial y_i` (a bag sum over the transposed
  table), :math:`\partial x = \partial Z W_r^\top`, :math:`\partial W_r = x^\top \partial Z`.
"""

from __future__ import annotations

import hashlib
import weakref

import torch
from torch import Tensor

from deep3dmm.nn.sparse import _bag_sum, block_diagonal, index_dtype

__all__ = ["SpiralTables", "spiral_gather_linear", "spiral_matmul_gather"]


def _transpose_table(index: Tensor, bags: int) -> tuple[Tensor, Tensor]:
    """CSR transpose of a flat index list.

    For every target ``t < bags``, the positions ``p`` with ``index[p] == t`` in increasing
    order. Returns ``(positions (E,), offsets (bags+1,))``, both in ``index``'s dtype.
    """
    positions = torch.sort(index, stable=True).indices.to(index.dtype)
    offsets = torch.zeros(bags + 1, dtype=index.dtype, device=index.device)
    offsets[1:] = torch.cumsum(torch.bincount(index, minlength=bags), 0)
    return positions, offsets


#: Tables of equal spirals, shared by the convolutions of one level (see ``SpiralTables.shared``).
_SHARED: weakref.WeakValueDictionary[tuple, SpiralTables] = weakref.WeakValueDictionary()


class SpiralTables:
    """Index tables of one spiral level for both orders, expanded per batch size on demand.

    Index arrays are int32 while their entries fit (:func:`~deep3dmm.nn.sparse.index_dtype`):
    half the memory of int64, which the bag-sum and gather kernels take alike.

    Args:
        spirals: ``(V_out, L)`` integer indices into ``V_in`` input vertices (``V_out < V_in``
            when only some outputs are wanted, e.g. the vertices a selection pooling keeps).
        in_vertices: ``V_in`` (default ``V_out``: the square table of a level).
    """

    def __init__(self, spirals: Tensor, in_vertices: int | None = None):
        v, length = spirals.shape
        self.vertices, self.length = int(v), int(length)
        self.in_vertices = self.vertices if in_vertices is None else int(in_vertices)
        dtype = index_dtype(max(self.vertices, self.in_vertices) * self.length + 1)
        spirals = spirals.to(dtype)
        flat = spirals.reshape(-1)
        self.flat = flat  # (V_out*L,) the spiral of output i at positions i*L .. i*L+L-1
        # gather first: the gradient of x_j gathers the rows i*L + l of dG with S_il = j
        self.gather_t, self.gather_t_offsets = _transpose_table(flat, self.in_vertices)
        # matmul first: y_i sums the rows S_il*L + l of Z (bags of L); dZ_(j,l) sums dy_i
        steps = torch.arange(length, dtype=dtype, device=spirals.device)
        self.z_rows = (spirals * length + steps).reshape(-1)
        z_t, self.z_t_offsets = _transpose_table(self.z_rows, self.in_vertices * self.length)
        self.z_t = torch.div(z_t, length, rounding_mode="floor")  # the vertex i of (i, l)
        self.z_offsets = torch.arange(
            0, self.z_rows.numel() + 1, length, dtype=dtype, device=spirals.device
        )
        self._batched: dict[tuple, tuple[Tensor, Tensor]] = {}

    @classmethod
    def shared(cls, spirals: Tensor) -> SpiralTables:
        """The square tables of ``spirals``, one instance for all equal spirals in the process.

        The encoder's, decoder's and output convolutions of a level hold equal spirals: their
        tables (and per-batch expansions, ~100 MB at 80k vertices and batch 4) are built and
        kept once. Kept while some convolution uses them (a weak cache keyed by content).
        """
        digest = hashlib.blake2b(spirals.detach().cpu().numpy().tobytes(), digest_size=16)
        key = (str(spirals.device), tuple(spirals.shape), str(spirals.dtype), digest.hexdigest())
        tables = _SHARED.get(key)
        if tables is None:
            tables = _SHARED[key] = cls(spirals)
        return tables

    def batched(self, name: str, batch: int) -> tuple[Tensor, Tensor]:
        """``(indices, offsets)`` of table ``name`` repeated for ``batch`` samples.

        Each copy is shifted by its sample's row offset in the flattened source; cached per
        batch size.
        """
        key = (name, batch)
        if key not in self._batched:
            index, offsets, source = {
                # dG (B*V_out*L rows) -> dx: one bag per input vertex j
                "gather_t": (self.gather_t, self.gather_t_offsets, self.vertices * self.length),
                # Z (B*V_in*L rows) -> y: bags of L per output vertex i
                "z": (self.z_rows, self.z_offsets, self.in_vertices * self.length),
                # dy (B*V_out rows) -> dZ: one bag per (j, l)
                "z_t": (self.z_t, self.z_t_offsets, self.vertices),
            }[name]
            self._batched = {k: v for k, v in self._batched.items() if k[1] == batch}
            self._batched[key] = block_diagonal(index, offsets, source, batch)
        return self._batched[key]

    def batched_gather(self, batch: int) -> Tensor:
        """``(B*V_out*L,)`` rows of the flat ``(B*V_in, C)`` input along every spiral, by sample."""
        key = ("gather", batch)
        if key not in self._batched:
            dtype = index_dtype(batch * self.in_vertices + 1)
            shift = torch.arange(batch, dtype=dtype, device=self.flat.device) * self.in_vertices
            self._batched = {k: v for k, v in self._batched.items() if k[1] == batch}
            flat = self.flat.to(dtype)
            self._batched[key] = ((flat[None, :] + shift[:, None]).reshape(-1), None)
        return self._batched[key][0]

    def matmul_csr(self, transpose: bool, batch: int) -> tuple[Tensor, Tensor, None]:
        """``(indices, offsets, weights)`` of the matmul-first bag sums over the batch.

        ``Z -> y`` (with ``transpose``: ``dy -> dZ``); the weights are all 1 (``None``).
        """
        return (*self.batched("z_t" if transpose else "z", batch), None)


def _as_output(flat: Tensor, *shape: int) -> Tensor:
    """The contiguous forward temporary ``flat`` as a ``shape`` tensor with no view relation.

    A custom Function's output that is a view of a tensor made inside the Function may not
    be modified in place (autograd forbids it), and the autoencoder's activation runs in
    place on conv outputs; ``flat`` dies with the forward, so its storage is handed over.
    """
    strides = torch.empty(shape, device="meta").stride()
    return flat.new_empty(0).set_(flat.untyped_storage(), flat.storage_offset(), shape, strides)


class _GatherLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, spirals, tables, weight, bias):
        b, v, c = x.shape
        gathered = x.index_select(1, spirals.view(-1)).view(b * tables.vertices, -1)
        y = gathered @ weight.t() if bias is None else torch.addmm(bias, gathered, weight.t())
        ctx.tables, ctx.shape, ctx.has_bias = tables, (b, v, c), bias is not None
        ctx.save_for_backward(gathered, weight)
        return _as_output(y, b, tables.vertices, y.shape[1])

    @staticmethod
    def backward(ctx, grad):
        gathered, weight = ctx.saved_tensors
        b, v, c = ctx.shape
        grad = grad.reshape(gathered.shape[0], -1)  # (B*V_out, C_out)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_g = (grad @ weight).view(-1, c)  # (B*V*L, C_in)
            indices, offsets = ctx.tables.batched("gather_t", b)
            grad_x = _bag_sum(grad_g, indices, offsets).view(b, v, c)
        if ctx.needs_input_grad[3]:
            grad_w = grad.t() @ gathered
        if ctx.has_bias and ctx.needs_input_grad[4]:
            grad_b = grad.sum(0)
        return grad_x, None, None, grad_w, grad_b


def spiral_gather_linear(
    x: Tensor, spirals: Tensor, tables: SpiralTables, weight: Tensor, bias: Tensor | None
) -> Tensor:
    """Gather-first spiral map: ``(B, V, C_in)`` -> ``(B, V, C_out)``.

    Args:
        x: ``(B, V, C_in)``.
        spirals: ``(V_out, L)`` long.
        tables: :class:`SpiralTables` of ``spirals`` (same device).
        weight: ``(C_out, L*C_in)``, position ``l*C_in + c`` multiplying channel ``c`` of the
            spiral's ``l``-th vertex.
        bias: ``(C_out,)`` or ``None``.
    """
    return _GatherLinear.apply(x, spirals, tables, weight, bias)


class _MatmulGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, tables, weight, bias):
        b, v, c = x.shape
        length = tables.length
        o = weight.shape[0]
        w_r = weight.view(o, length, c).permute(2, 1, 0).reshape(c, length * o)  # (C_in, L*O)
        x2 = x.reshape(b * v, c)
        z = (x2 @ w_r).view(b * v * length, o)  # row (b, j, l): x_bj W_l
        y = _bag_sum(z, *tables.matmul_csr(False, b))  # (B*V_out, O)
        if bias is not None:
            y += bias
        ctx.tables, ctx.shape, ctx.has_bias = tables, (b, v, c), bias is not None
        ctx.save_for_backward(x2, w_r)
        return _as_output(y, b, tables.vertices, o)

    @staticmethod
    def backward(ctx, grad):
        x2, w_r = ctx.saved_tensors
        b, v, c = ctx.shape
        length = ctx.tables.length
        o = grad.shape[-1]
        grad = grad.reshape(b * ctx.tables.vertices, o)
        grad_z = _bag_sum(grad, *ctx.tables.matmul_csr(True, b)).view(b * v, length * o)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_z @ w_r.t()).view(b, v, c)
        if ctx.needs_input_grad[2]:
            grad_wr = x2.t() @ grad_z  # (C_in, L*O)
            grad_w = grad_wr.view(c, length, o).permute(2, 1, 0).reshape(o, length * c)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = grad.sum(0)
        return grad_x, None, grad_w, grad_b


def spiral_matmul_gather(
    x: Tensor, tables: SpiralTables, weight: Tensor, bias: Tensor | None
) -> Tensor:
    """Matmul-first spiral map (same arguments and result as :func:`spiral_gather_linear`).

    ``tables`` may be any object with ``length``, ``vertices`` (outputs) and
    ``matmul_csr(transpose, batch)``, e.g. the composite tables of
    :mod:`deep3dmm.nn.spiral_upsampled`.
    """
    return _MatmulGather.apply(x, tables, weight, bias)
