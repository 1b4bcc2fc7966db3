"""Learned attention aggregation between mesh levels (Deep3DMM)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor, nn

from deep3dmm.errors import ConfigError
from deep3dmm.nn.attention_values import mapping_values
from deep3dmm.nn.checks import check_features
from deep3dmm.nn.clustered_topk import ClusteredTopK
from deep3dmm.nn.config import (
    APPROXIMATE_SEARCH_EVERY,
    ATTENTION_MODES,
    AUTO_EXACT_SCORES,
    NORMALIZATIONS,
    TOPK_SEARCHES,
)
from deep3dmm.nn.sparse import (
    batched_constant_spmm,
    csr_from_buffers,
    index_dtype,
    learned_spmm,
    register_csr,
    regular_pointers,
    sampled_dot,
)
from deep3dmm.nn.topk import score_topk

__all__ = [
    "AttentionPool",
    "ATTENTION_MODES",
    "AUTO_EXACT_SCORES",
    "NORMALIZATIONS",
    "TOPK_SEARCHES",
]

log = logging.getLogger(__name__)
_WARNED: set[tuple[int, int]] = set()  # (top_k, V_in) pairs already reported

_FROZEN = (
    "frozen_crow",
    "frozen_col",
    "frozen_val",
    "frozen_t_crow",
    "frozen_t_col",
    "frozen_t_val",
)


def _unit_columns(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Each column of ``x`` (d, n) divided by ``max(norm, eps)``, as ``F.normalize(x, dim=0)``.

    A sum over the contiguous rows instead of ``F.normalize``'s strided norm (timings:
    docs/benchmarks.md).
    """
    return x * torch.rsqrt((x * x).sum(0, keepdim=True).clamp_min(eps * eps))


def _padded_rows(crow: Tensor, col: Tensor, val: Tensor) -> tuple[Tensor, Tensor]:
    """A CSR matrix's rows as a regular ``(R, w)`` layout, ``w`` the widest row.

    Short rows are padded with zero values on the smallest columns the row does not use,
    so no row repeats a column (the matrix has at least ``w`` columns, as its widest row
    holds ``w`` distinct ones).

    Returns:
        ``(columns (R, w) long, values (R, w))``.
    """
    counts = crow[1:] - crow[:-1]  # (R,)
    rows, width = len(counts), int(counts.max()) if len(counts) else 0
    row = torch.repeat_interleave(torch.arange(rows), counts)
    slot = torch.arange(len(col)) - crow[row]
    used = torch.full((rows, width), -1, dtype=torch.long)
    used[row, slot] = col
    grid = torch.arange(2 * width)  # holds >= width - count unused columns for every row
    free = ~(grid[None, :, None] == used[:, None, :]).any(2)  # (R, 2w)
    first_free = grid[torch.argsort((~free).to(torch.uint8), dim=1, stable=True)]  # (R, 2w)
    pad = first_free.gather(1, (torch.arange(width) - counts[:, None]).clamp_min(0))
    columns = torch.where(torch.arange(width) < counts[:, None], used, pad)
    values = torch.zeros(rows, width, dtype=val.dtype)
    values[row, slot] = val
    return columns, values


class AttentionPool(nn.Module):
    r"""Learned attention aggregation between mesh levels (Deep3DMM).

    Chen & Kim, "Learning Feature Aggregation for Deep 3D Morphable Models", CVPR 2021.

    Trainable keys :math:`K \in \mathbb{R}^{d \times V_{in}}` and queries
    :math:`Q \in \mathbb{R}^{d \times V_{out}}` score every (output, input) vertex pair by
    cosine similarity; each output row keeps its top-k scores, normalised to sum to one:

    .. math::
        S_{ij} = \max(0, \cos(Q_{:,i}, K_{:,j})),\qquad
        A_{ij} = \frac{S_{ij}}{\sum_{j' \in \mathrm{top}_k(i)} S_{ij'}}
        \;(j \in \mathrm{top}_k(i)),\; 0 \text{ otherwise}

    The learned mapping is fused with the fixed prior :math:`M` (D or U) by a learnable
    2-vector :math:`w`: :math:`P = (w_0 M + w_1 A) / (w_0 + w_1)`, and :math:`Y_b = P X_b`.

    :math:`P` does not depend on the input: it is computed once per forward for the whole
    batch, built sparsely from the top-k indices (the dense score matrix has no batch
    dimension and is computed in row chunks), and after training :meth:`freeze` turns it into
    a constant sparse buffer, so inference costs one sparse product like :class:`FixedPool`.

    Initialisation (as the paper): the first three rows of ``K`` and ``Q`` hold the vertex
    positions standardised with the full mesh's mean/std and scaled by 0.1, the other rows
    are uniform in [0, 0.1); uniform noise in [0, ``noise``) is added to all rows.

    Args:
        in_vertices: ``(V_in, 3)`` positions of the input level.
        out_vertices: ``(V_out, 3)`` positions of the output level.
        prior: ``(V_out, V_in)`` fixed mapping (D or U); required unless ``mode="learned"``.
        top_k: learned non-zeros per output row (clamped to ``V_in``); 8 down, 32 up in the paper.
        dim: ``d``, the key/query dimension (>= 3).
        prior_weight: initial ``w_0``; ``w_1`` starts at ``1 - prior_weight``.
        mode: ``"fused"`` (prior + learned, the paper), ``"learned"`` (no prior) or
            ``"prior"`` (the fixed matrix only: an ablation equal to :class:`FixedPool`).
        normalize: ``"l1"`` (the paper) or ``"softmax"`` over each row's top-k scores.
        mean: ``(3,)`` standardisation mean (the full mesh's); defaults to ``in_vertices``'.
        std: ``(3,)`` standardisation std; defaults to ``in_vertices``'.
        noise: width of the uniform initialisation noise.
        chunk_rows: output rows per chunk of the dense ``(rows, V_in)`` score matrix (fewer
            for wide levels: a chunk holds at most 2^24 scores).
        topk_search: how the top-k columns are found. ``"exact"``: dense scores in row chunks
            with last step's candidates (:func:`~deep3dmm.nn.topk.score_topk`), exact;
            ``"approximate"``: clustered keys (:class:`~deep3dmm.nn.clustered_topk.ClusteredTopK`),
            about ``16 * 64`` scored keys per output row instead of ``V_in``, searched on
            every :data:`APPROXIMATE_SEARCH_EVERY`-th step (the steps between rescore each
            row's ``1.5 k`` best columns of the last search), its recall of the exact top-k
            measured in docs/benchmarks.md; ``"auto"`` (the default): exact up to
            :data:`AUTO_EXACT_SCORES` scores per level (every COMA/SMPL-sized mesh),
            approximate above (scan resolution: the dense search there takes 3.8 s per
            training step at 80k vertices against 0.85 s; MeshAutoencoder says which levels in
            its log). The
            approximate search's state (its last picks as the
            ``picks`` buffer, its call counters, candidates and key clusters) is part of the
            ``state_dict``, so a resumed run repeats the steps of an uninterrupted one.

    Shapes:
        - input: ``(B, V_in, C)``
        - output: ``(B, V_out, C)``
    """

    def __init__(
        self,
        in_vertices,
        out_vertices,
        prior=None,
        *,
        top_k: int,
        dim: int = 21,
        prior_weight: float = 0.8,
        mode: str = "fused",
        normalize: str = "l1",
        mean=None,
        std=None,
        noise: float = 0.01,
        chunk_rows: int = 2048,
        topk_search: str = "auto",
    ):
        super().__init__()
        if mode not in ATTENTION_MODES:
            raise ConfigError(f"AttentionPool: mode must be one of {ATTENTION_MODES}, got {mode!r}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(
                f"AttentionPool: normalize must be one of {NORMALIZATIONS}, got {normalize!r}"
            )
        if int(dim) < 3:
            raise ConfigError(
                f"AttentionPool: dim must be >= 3 (the first 3 rows hold positions), got {dim}"
            )
        if topk_search not in TOPK_SEARCHES:
            raise ConfigError(
                f"AttentionPool: topk_search must be one of {TOPK_SEARCHES}, got {topk_search!r}"
            )
        if int(top_k) < 1:
            raise ConfigError(f"AttentionPool: top_k must be >= 1, got {top_k}")
        in_vertices = np.asarray(in_vertices, dtype=np.float64)
        out_vertices = np.asarray(out_vertices, dtype=np.float64)
        self.in_vertices, self.out_vertices = len(in_vertices), len(out_vertices)
        if prior is None and mode != "learned":
            raise ConfigError(
                f"AttentionPool: mode {mode!r} needs the fixed prior matrix",
                fix="pass prior=hierarchy.down[level] (or up), or use mode='learned'",
            )
        if prior is not None:
            if tuple(prior.shape) != (self.out_vertices, self.in_vertices):
                raise ConfigError(
                    f"AttentionPool: prior has shape {tuple(prior.shape)}, expected "
                    f"({self.out_vertices}, {self.in_vertices})"
                )
            register_csr(self, "prior", prior)
        self.has_prior = prior is not None
        self.mode = mode
        self.normalize = normalize
        self.dim = int(dim)
        self.top_k = min(int(top_k), self.in_vertices)
        if self.top_k < int(top_k) and (int(top_k), self.in_vertices) not in _WARNED:
            _WARNED.add((int(top_k), self.in_vertices))  # once per process, not per rebuild
            log.warning(
                "AttentionPool: top_k %d is more than the %d vertices of the level it reads; "
                "using top_k %d (every vertex): that level's attention is dense",
                top_k, self.in_vertices, self.in_vertices,
            )  # fmt: skip
        self.chunk_rows = max(1, min(int(chunk_rows), (1 << 24) // max(self.in_vertices, 1)))
        self.topk_search = topk_search
        dense_scores = self.out_vertices * self.in_vertices
        self.approximate = topk_search == "approximate" or (
            topk_search == "auto" and dense_scores > AUTO_EXACT_SCORES
        )
        self._clustered = (
            ClusteredTopK(self.top_k, search_every=APPROXIMATE_SEARCH_EVERY)
            if self.approximate
            else None
        )
        self.frozen = False
        self._candidates = None  # last step's wider top-k sets (a hint; see score_topk)
        self._prepared = None  # the next forward's mapping, computed ahead (see prepare)
        self._eval_csr = None  # (state key, mapping) reused outside training (_current_csr)
        if mode == "prior":
            return
        mean = in_vertices.mean(0) if mean is None else np.asarray(mean, dtype=np.float64)
        std = in_vertices.std(0) if std is None else np.asarray(std, dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        self.keys = nn.Parameter(self._init_rows(in_vertices, mean, std, noise))  # (d, V_in)
        self.queries = nn.Parameter(self._init_rows(out_vertices, mean, std, noise))  # (d, V_out)
        if mode == "fused":
            self.weight = nn.Parameter(torch.tensor([prior_weight, 1.0 - prior_weight]))  # (2,)
        # CSR layout of the learned entries alone: k per row (int32 indices below 2^31 entries).
        k = self.top_k
        fused = self.has_prior and mode == "fused"
        prior_width = int((self.prior_crow[1:] - self.prior_crow[:-1]).max()) if fused else 0
        self.index_dtype = index_dtype(self.out_vertices * (k + prior_width))
        like = torch.empty(0, dtype=self.index_dtype)
        if self.approximate:
            # The approximate search's last picks (V_out, k) (empty: none yet) are state: an
            # eval-mode forward, freeze() and a checkpoint use them, so the mapping does not
            # depend on how many calls came before (see _picks).
            self.register_buffer("picks", torch.empty(0, k, dtype=self.index_dtype))
        self.register_buffer(
            "row_pointers", regular_pointers(self.out_vertices, k, like), persistent=False
        )
        if fused:
            # One CSR holding both heads, so the fused P x is a single sparse product. Each
            # row is [prior block | learned block]: the prior's entries padded to the widest
            # prior row with zero-valued entries on columns the row does not use (each block
            # free of repeats, as the value gradient needs), then the k learned entries; a
            # regular layout, assembled by one concatenation per step.
            cols, vals = _padded_rows(self.prior_crow, self.prior_col, self.prior_val)
            cols = cols.to(self.index_dtype)
            self.register_buffer("prior_block_col", cols, persistent=False)  # (V_out, w)
            self.register_buffer("prior_block_val", vals, persistent=False)  # (V_out, w)
            width = cols.shape[1] + k
            self.register_buffer(
                "merged_crow", regular_pointers(self.out_vertices, width, like), persistent=False
            )

    def _init_rows(self, positions: np.ndarray, mean, std, noise: float) -> Tensor:
        rows = torch.rand(self.dim, len(positions)) * 0.1  # U[0, 0.1)
        rows[:3] = torch.from_numpy(((positions - mean) / std * 0.1).T.astype(np.float32))
        return rows + torch.rand_like(rows) * noise

    # ------------------------------------------------------------------ the learned mapping
    def _coefficients(self) -> tuple[Tensor, Tensor]:
        """``(c0, c1) = (w0, w1) / (w0 + w1)``; ``(0, 1)`` without a prior."""
        if self.mode == "learned":
            one = torch.ones((), device=self.keys.device)
            return one * 0, one
        total = self.weight.sum()
        return self.weight[0] / total, self.weight[1] / total

    def attention(self) -> tuple[Tensor, Tensor]:
        """The learned head ``A``: top-k column indices and their normalised weights.

        Returns:
            ``(indices (V_out, k), distinct and ascending within a row, int32 below 2^31
            mapping entries (:func:`~deep3dmm.nn.sparse.index_dtype`);
            weights (V_out, k))``; ``weights`` carries gradients to the keys and queries.
            The indices are the exact top-k of the cosine scores, found by
            :func:`~deep3dmm.nn.topk.score_topk` from the previous call's candidates, or with
            :attr:`approximate` the clustered search's (approximate) top-k.
        """
        index, scores = self._picks()
        one = torch.ones((), dtype=scores.dtype, device=scores.device)
        weights = mapping_values(scores, None, one * 0, one, self.normalize)
        return index, weights.view(self.out_vertices, self.top_k)

    def _picks(self, search: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(indices (V_out, k), their cosine scores (V_out, k))``; see :meth:`attention`.

        The scores are differentiable in the keys and queries. Both searches keep state
        between calls (the exact one last step's candidates, which decide near-ties; the
        approximate one what it found before), used only with ``search`` (default: in
        training mode). Otherwise the exact search starts from no candidates and the
        approximate head scores its stored :attr:`picks` (searching once when it has none,
        e.g. an older checkpoint), so the mapping is a function of the module's parameters
        and buffers, whatever calls came before.
        """
        if self.mode == "prior" or self.frozen:
            raise ConfigError(
                f"AttentionPool: no learned head (mode={self.mode!r}, frozen={self.frozen})"
            )
        keys = _unit_columns(self.keys)  # (d, V_in)
        queries = _unit_columns(self.queries)  # (d, V_out)
        picked = None  # the picks' scores, when the search computed them
        search = self.training if search is None else search
        stored = self._buffers.get("picks")
        stored = stored if stored is not None and stored.shape[0] == self.out_vertices else None
        if self.approximate and (search or stored is None):
            index, picked = self._clustered(queries.detach(), keys.detach(), with_scores=True)
            picked = picked.reshape(-1) if search else None  # else scored as stored picks are
            self.register_buffer("picks", index.to(self.index_dtype))
        elif self.approximate:
            index = stored
        elif search:
            index, self._candidates, _ = score_topk(
                queries, keys, self.top_k, candidates=self._candidates, chunk_rows=self.chunk_rows
            )
        else:  # the full top-k, not last step's candidates: near-ties resolve the same way
            index, _, _ = score_topk(queries, keys, self.top_k, chunk_rows=self.chunk_rows)
        index = index.to(self.index_dtype)
        # cos(q_i, k_j) for the k picked pairs only: an SDDMM, differentiable in q and k
        scores = sampled_dot(
            self.row_pointers, index.reshape(-1), queries.t(), keys.t(), values=picked
        )
        return index, scores.view(self.out_vertices, self.top_k)

    def mapping(self, *, search: bool | None = None) -> Tensor:
        """The current ``P`` as a coalesced sparse COO tensor ``(V_out, V_in)`` (detached).

        ``search``: run the approximate search (default: in training mode), see ``_picks``.
        """
        shape = (self.out_vertices, self.in_vertices)
        if self.frozen:
            return csr_from_buffers(self, "frozen").detach().to_sparse_coo().coalesce()
        with torch.no_grad():
            crow, col, values, blocks = self._learned_csr(search)
            counts = crow[1:] - crow[:-1]
            rows = torch.repeat_interleave(
                torch.arange(self.out_vertices, device=crow.device), counts
            )
            return torch.sparse_coo_tensor(
                torch.stack([rows, col.long()]), values, shape, check_invariants=False
            ).coalesce()

    def _learned_csr(self, search: bool | None = None):
        """CSR arrays of the current ``P`` (values carry gradients), uncoalesced.

        Returns:
            ``(crow (V_out+1,), col (nnz,), values (nnz,), blocks)``: ``blocks`` the
            per-row widths (prior, learned) of the fused layout (see ``learned_spmm``), or
            ``None`` when the rows hold no repeated column.
        """
        if self.mode == "prior":
            return self.prior_crow, self.prior_col, self.prior_val, None
        index, scores = self._picks(search)
        c0, c1 = self._coefficients()
        if self.mode == "learned":
            values = mapping_values(scores, None, c0, c1, self.normalize)
            return self.row_pointers, index.reshape(-1), values, None
        col = torch.cat([self.prior_block_col, index], 1).reshape(-1)
        values = mapping_values(scores, self.prior_block_val, c0, c1, self.normalize)
        return self.merged_crow, col, values, (self.prior_block_col.shape[1], self.top_k)

    # ------------------------------------------------------------------ freezing
    def freeze(self) -> None:
        """Materialise ``P`` as constant sparse buffers and drop keys, queries and ``w``.

        The outputs stay equal to the unfrozen module's (within float rounding); the frozen
        module's ``state_dict`` holds the mapping, not the attention parameters.
        """
        if self.frozen:
            return
        p = self.mapping(search=False)  # the stored picks of an approximate head, as in eval
        keep = p.values() != 0  # exact zeros (e.g. w1 = 0) are not stored
        indices, values = p.indices()[:, keep].cpu().numpy(), p.values()[keep].cpu().numpy()
        import scipy.sparse as sp

        matrix = sp.csr_matrix(
            (values, (indices[0], indices[1])), shape=(self.out_vertices, self.in_vertices)
        )
        device = p.device
        for name in ("keys", "queries", "weight"):
            if hasattr(self, name):
                delattr(self, name)
        self._candidates = self._clustered = self._eval_csr = None
        for name in ("row_pointers", "merged_crow", "prior_block_col", "prior_block_val", "picks"):
            if hasattr(self, name):
                delattr(self, name)
        register_csr(self, "frozen", matrix)
        for name in (*_FROZEN, "frozen_shape"):
            setattr(self, name, getattr(self, name).to(device))
        self.frozen = True

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._searching():  # the approximate search's state: a resume repeats its calls
            for name, tensor in self._clustered.state().items():
                destination[prefix + "search_" + name] = tensor

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self._searching():  # older checkpoints hold no picks and no search state
            like = self.row_pointers.new_empty(0, self.top_k, dtype=self.index_dtype)
            stored = state_dict.setdefault(prefix + "picks", like)
            self.register_buffer("picks", torch.empty_like(stored, device=like.device))
            keys = [name for name in ClusteredTopK.STATE if prefix + "search_" + name in state_dict]
            device = like.device
            self._clustered.restore(
                {name: state_dict.pop(prefix + "search_" + name).to(device) for name in keys}
            )
        # A frozen mapping's nnz depends on the trained weights: adopt the stored sizes.
        if self.frozen:
            for name in _FROZEN:
                stored = state_dict.get(prefix + name)
                if stored is not None and stored.shape != getattr(self, name).shape:
                    setattr(self, name, torch.empty_like(stored, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self._searching():  # the loaded picks are the search's last result
            loaded = self.picks.shape[0] == self.out_vertices
            self._clustered.previous = self.picks if loaded else None

    def _searching(self) -> bool:
        """True for a learned head that runs the (stateful) approximate search."""
        return self.approximate and self._clustered is not None and self.mode != "prior"

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tensor:
        """Aggregate ``x`` of shape ``(B, V_in, C)`` to ``(B, V_out, C)``."""
        check_features(x, layer="AttentionPool", vertices=self.in_vertices, kind="pooling")
        if self.frozen:
            return batched_constant_spmm(self, "frozen", x)
        if self.mode == "prior":
            return batched_constant_spmm(self, "prior", x)
        prepared, self._prepared = self._prepared, None
        crow, col, values, blocks = self._current_csr() if prepared is None else prepared
        shape = (self.out_vertices, self.in_vertices)
        return learned_spmm(crow, col, values.to(x.dtype), shape, x, blocks=blocks)

    def _current_csr(self):
        """:meth:`_learned_csr`, kept between calls while it cannot change.

        Outside training and without gradients (validation, evaluation, rendering) the
        mapping is a function of the keys, queries, ``w`` and stored picks (see ``_picks``):
        it is computed once and reused until one of them is replaced or updated in place
        (their version counters move, as an optimizer step or ``load_state_dict`` makes
        them), so only the first batch pays for the head.
        """
        if self.training or torch.is_grad_enabled():
            self._eval_csr = None
            return self._learned_csr()
        state = [self.keys, self.queries, getattr(self, "weight", None), self._buffers.get("picks")]
        key = tuple((t.data_ptr(), t._version, t.device) for t in state if t is not None)
        if self._eval_csr is None or self._eval_csr[0] != key:
            self._eval_csr = (key, self._learned_csr())
        return self._eval_csr[1]

    def prepare(self) -> None:
        """Compute the learned mapping of the next :meth:`forward` now.

        The head's search and scoring make transient tensors (at 80k vertices over 100 MB
        per up-mapping); computed before the network's activations exist, they do not add
        to the process's peak memory. The next forward uses (and drops) the prepared
        mapping; :meth:`discard` drops it unused. Same numbers either way.
        """
        if not (self.frozen or self.mode == "prior"):
            self._prepared = self._current_csr()

    def discard(self) -> None:
        """Drop a mapping :meth:`prepare` made that no forward used."""
        self._prepared = None

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"in_vertices={self.in_vertices}, out_vertices={self.out_vertices}, "
            f"top_k={self.top_k}, dim={self.dim}, mode={self.mode!r}, "
            f"normalize={self.normalize!r}, frozen={self.frozen}"
            + (", topk_search='approximate'" if self.approximate else "")
        )
