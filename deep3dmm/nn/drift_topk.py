r"""Exact row-wise top-k of cosine scores, certified from candidates by a drift bound.

The attention head needs, every step, the ``k`` largest entries of each row of
:math:`S = Q^\top K` (unit columns, :math:`S_{ij} = \cos(q_i, k_j)`). Forming :math:`S` costs
:math:`R N d` per step. :class:`DriftTopK` forms it only for the rows it cannot certify.

At a row's last dense refresh (time :math:`t_i`) it keeps the row's ``width`` best columns
:math:`C_i` and the best score outside them, :math:`\sigma_i`. Keys and queries are unit
vectors, so :math:`|q \cdot k - q' \cdot k'| \le |q - q'| + |k - k'|`; with :math:`K_0` the
keys at the last full refresh and :math:`\delta(t) = \max_j |k_j(t) - k_j^{(0)}|`, every
column :math:`j \notin C_i` satisfies

.. math::
    S_{ij}(t) \le \tau_i + |q_i(t) - q_i(t_i)| + \delta(t), \qquad
    \tau_i = \sigma_i + \delta(t_i).

So the top-k among the candidates (scored at :math:`R \cdot width \cdot d`) is the row's exact
top-k whenever its k-th score exceeds that bound plus a rounding margin, and is strictly
above the (k+1)-th candidate (no tie at the boundary, so the set is unique). Rows that fail
are refreshed densely (in row chunks); when more than ``refresh_fraction`` of the rows fail,
every row is, and :math:`K_0` moves to the current keys (:math:`\delta = 0`).

The selection is made on the candidates' scores as :func:`~deep3dmm.nn.sparse.sampled_dot`
computes them (one SDDMM, the same kernel that scores the picked entries for the weights),
so the result does not depend on which rows were refreshed when: a resumed run, which
starts without this cache, picks the same columns as the uninterrupted run. Exact ties at
the boundary go to the smaller column index. Only a row with more than ``width - k`` keys
within rounding of its k-th score (degenerate keys) takes its top-k from the dense row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deep3dmm.nn.sparse import _sddmm

__all__ = ["DriftTopK"]


def _pick(scores: Tensor, columns: Tensor, k: int) -> Tensor:
    """Top ``k`` of each row by ``scores`` (desc), ties to the smaller column; ``(R, k)``."""
    columns, order = columns.sort(1)
    scores = scores.gather(1, order)
    best = scores.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return columns.gather(1, best)


class DriftTopK:
    """Exact top-k column indices of ``Q^T K`` rows with a per-row candidate cache.

    The cache (candidates, bounds, reference keys and queries) only saves work: the result
    is the exact top-k with or without it.

    Args:
        k: entries per row.
        width: candidates kept per row (default ``k + 64``); a row whose ``width`` covers
            every column is scored densely.
        chunk_rows: rows of the dense score matrix formed at once on a refresh.
        refresh_fraction: refresh every row (and move the reference keys) when more than
            this fraction of the rows fails the certificate.
    """

    def __init__(
        self,
        k: int,
        *,
        width: int | None = None,
        chunk_rows: int = 2048,
        refresh_fraction: float = 0.5,
    ):
        self.k = int(k)
        self.width = self.k + 64 if width is None else max(int(width), self.k)
        self.chunk_rows = max(1, int(chunk_rows))
        self.refresh_fraction = float(refresh_fraction)
        self.state: dict[str, Tensor] | None = None
        self.calls = self.refreshed_rows = self.full_refreshes = 0
        self.last_refreshed = 0  # rows refreshed densely on the last call

    def clear(self) -> None:
        """Drop the cache (the next call refreshes every row)."""
        self.state = None

    @staticmethod
    def margin(queries: Tensor) -> float:
        """Rounding allowance of a score difference (SDDMM vs matmul, norms): ``32 d eps``."""
        return 32.0 * queries.shape[0] * torch.finfo(queries.dtype).eps

    @torch.no_grad()
    def __call__(self, queries: Tensor, keys: Tensor) -> Tensor:
        """Indices ``(R, k)`` of each row's ``k`` largest scores, ascending within a row.

        Args:
            queries: ``(d, R)`` unit columns.
            keys: ``(d, N)`` unit columns, ``N >= k``.
        """
        queries, keys = queries.detach(), keys.detach()
        rows, n = queries.shape[1], keys.shape[1]
        k, width = min(self.k, n), min(self.width, n)
        self.calls += 1
        q_rows, k_rows = queries.t().contiguous(), keys.t().contiguous()  # (R, d), (N, d)
        if width >= n:  # every column is a candidate: score them all
            self.last_refreshed = rows
            self.refreshed_rows += rows
            everything = torch.arange(n, device=keys.device).expand(rows, n)
            index = torch.empty(rows, k, dtype=torch.long, device=keys.device)
            for start in range(0, rows, self.chunk_rows):
                part = slice(start, start + self.chunk_rows)
                index[part] = _pick(q_rows[part] @ keys, everything[part], k)
            return index.sort(1).values
        state = self.state
        fresh = state is None or state["cand"].shape != (rows, width) or (
            state["keys"].shape != keys.shape or state["keys"].device != keys.device
            or state["keys"].dtype != keys.dtype
        )  # fmt: skip
        if fresh:
            state = self.state = dict(
                keys=keys.clone(), queries=queries.clone(),
                cand=torch.empty(rows, width, dtype=torch.long, device=keys.device),
                tau=torch.empty(rows, dtype=keys.dtype, device=keys.device),
            )  # fmt: skip
            stale = torch.arange(rows, device=keys.device)
            drift = 0.0
        else:
            drift = float((keys - state["keys"]).norm(dim=0).max())
            moved = (queries - state["queries"]).norm(dim=0)  # (R,)
            bound = state["tau"] + moved + drift + self.margin(queries)
            index, ok = self._certified(q_rows, k_rows, state["cand"], bound, k)
            stale = (~ok).nonzero().squeeze(1)
            if stale.numel() > self.refresh_fraction * rows:
                state["keys"].copy_(keys)
                drift = 0.0
                stale = torch.arange(rows, device=keys.device)
        if stale.numel() == rows:
            index = torch.empty(rows, k, dtype=torch.long, device=keys.device)
            if not fresh:
                self.full_refreshes += 1
        self._refresh(q_rows, k_rows, keys, stale, index, drift, k, width)
        state["queries"][:, stale] = queries[:, stale]
        self.last_refreshed = int(stale.numel())
        self.refreshed_rows += self.last_refreshed
        return index.sort(1).values

    def _certified(self, q_rows, k_rows, cand, bound, k):
        """Top-k among the candidates ``(R, k)`` and whether each row is certified ``(R,)``."""
        rows, width = cand.shape
        pointers = torch.arange(0, rows * width + 1, width, device=cand.device)
        scores = _sddmm(pointers, cand.reshape(-1), (rows, k_rows.shape[0]), q_rows, k_rows)
        top = scores.view(rows, width).topk(k + 1, dim=1, sorted=True)
        kth, next_ = top.values[:, k - 1], top.values[:, k]
        ok = (kth >= bound) & (kth > next_)
        return cand.gather(1, top.indices[:, :k]), ok

    def _refresh(self, q_rows, k_rows, keys, stale, index, drift, k, width):
        """Dense rows ``stale``: new candidates, bounds and (certified) top-k, in place."""
        state, margin = self.state, self.margin(keys)
        for start in range(0, stale.numel(), self.chunk_rows):
            part = stale[start : start + self.chunk_rows]
            dense = q_rows[part] @ keys  # (rows, N)
            top = dense.topk(width + 1, dim=1, sorted=True)
            cand, sigma = top.indices[:, :width], top.values[:, width]
            state["cand"][part] = cand
            state["tau"][part] = sigma + drift
            picked, ok = self._certified(q_rows[part], k_rows, cand, sigma + margin, k)
            if not bool(ok.all()):  # > width - k keys within rounding of the k-th score
                bad = (~ok).nonzero().squeeze(1)
                everything = torch.arange(keys.shape[1], device=keys.device)
                picked[bad] = _pick(dense[bad], everything.expand(len(bad), -1), k)
            index[part] = picked
