"""Exact row-wise top-k of a score product, reusing last step's candidates."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["score_topk"]


@torch.no_grad()
def score_topk(
    queries: Tensor,
    keys: Tensor,
    k: int,
    *,
    candidates: Tensor | None = None,
    width: int | None = None,
    chunk_rows: int = 2048,
) -> tuple[Tensor, Tensor | None, int]:
    r"""Column indices of the ``k`` largest entries of every row of :math:`S = Q^\top K`.

    A full ``topk`` over each row of the dense score matrix dominated the cost of the
    attention head. The top-k sets move slowly while training, so each row keeps a wider set
    of ``width`` candidate columns from the previous call; the top-k is taken among the
    candidates and checked exactly: it is the row's true top-k iff no non-candidate score
    exceeds the k-th candidate score

    .. math::
        \max_{j \notin C_i} S_{ij} \le \tau_i, \qquad
        \tau_i = k\text{-th largest of } \{S_{ij} : j \in C_i\}.

    Rows that fail the check (and every row on the first call) get fresh candidates from a
    full ``topk(width)``. The result is the exact top-k (ties broken arbitrarily, as
    ``torch.topk``), sorted by column within each row, so neither the candidates nor the
    path taken change the order of later float sums: a resumed run (which starts without
    candidates) computes bit for bit what the uninterrupted run does. The dense scores
    are built ``chunk_rows`` rows at a time and never carry a batch dimension.

    Args:
        queries: ``(d, R)``.
        keys: ``(d, N)``.
        k: entries per row, ``1 <= k <= N``.
        candidates: ``(R, width)`` from the previous call, or ``None``.
        width: candidates kept per row (default ``2k``); with ``width >= N`` there is nothing
            to reuse and a plain ``topk`` runs.
        chunk_rows: rows of ``S`` formed at once.

    Returns:
        ``(index (R, k) long, ascending within a row; candidates (R, width) for the next
        call, or None; refreshed: the number of rows that needed a full topk)``.
    """
    rows, columns = queries.shape[1], keys.shape[1]
    width = min(columns, 2 * k if width is None else max(int(width), k))
    index = torch.empty(rows, k, dtype=torch.long, device=keys.device)
    if width >= columns:
        for start in range(0, rows, chunk_rows):
            scores = queries[:, start : start + chunk_rows].t() @ keys  # (rows, N)
            index[start : start + chunk_rows] = scores.topk(k, dim=1, sorted=False).indices
        return index.sort(1).values, None, rows
    reuse = (
        candidates is not None
        and candidates.shape == (rows, width)
        and candidates.device == keys.device
    )
    if reuse:
        fresh = candidates.clone()
    else:
        fresh = torch.empty(rows, width, dtype=torch.long, device=keys.device)
    refreshed = 0
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        scores = queries[:, start:stop].t() @ keys  # (rows, N)
        if reuse:
            cand = fresh[start:stop]  # (rows, width)
            top = scores.gather(1, cand).topk(k, dim=1, sorted=False)
            index[start:stop] = cand.gather(1, top.indices)
            kth = top.values.amin(1)  # (rows,)
            others = scores.scatter_(1, cand, float("-inf")).amax(1)  # best non-candidate
            stale = (others > kth).nonzero().squeeze(1)
            if stale.numel() == 0:
                continue
            scores = queries[:, start + stale].t() @ keys  # (stale, N)
        else:
            stale = torch.arange(stop - start, device=keys.device)
        best = scores.topk(width, dim=1, sorted=True).indices  # (stale, width)
        fresh[start + stale] = best
        index[start + stale] = best[:, :k]
        refreshed += int(stale.numel())
    return index.sort(1).values, fresh, refreshed
