r"""Row-wise top-k of cosine scores without the dense score matrix: clustered keys.

For meshes at scan resolution the dense :math:`V_{out} \times V_{in}` score matrix of the
attention head costs more than the rest of a training step (80k vertices: 1.6e9 scores per
level and step). :class:`ClusteredTopK` groups the unit keys into clusters of about
``cluster_size`` (spherical k-means, rebuilt every ``rebuild`` calls; centroids and radii are
recomputed from the current keys on every call), assigns every query to the cluster of its
nearest centroid, and scores the queries of a cluster densely against the keys of the
``probes`` clusters whose centroids are nearest to it: one small matrix product per cluster,
about ``probes * cluster_size`` keys per query instead of ``V_in``.

That is an approximation (the true top-k may lie in a cluster that was not probed); each
row's previous result is merged in (rescored with the current keys), so a row keeps the best
set it has found while the keys move, and the recall of the exact top-k grows over the calls.
:meth:`ClusteredTopK.recall` measures it. The per-cluster products and ``topk`` calls run
with torch's thread count as it is (a library call does not change process-wide state);
``topk`` over each cluster's rows, most of a search's time, gains about 2x from 2 threads.
With ``certify=True`` every row is then checked exactly: with :math:`\mu_c` the unit centroid and
:math:`r_c` the largest angle between a member and it, no key of cluster :math:`c` scores
more than :math:`\cos(\max(0, \angle(q_i, \mu_c) - r_c))` (the triangle inequality on the
sphere); a row whose bound for some unprobed cluster reaches its k-th score is recomputed
from its dense row, so the result is the exact top-k. Measured on the attention heads'
initial keys (21-D, mostly random components) the bounds rarely prune (39-59 % of the keys
of a 20k-vertex level lie in clusters a row must scan), so the certified mode is exact but
not cheap there; the approximate mode is the scalable one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deep3dmm.nn.sparse import _sddmm, index_dtype, regular_pointers

__all__ = ["ClusteredTopK"]


def _unit(x: Tensor) -> Tensor:
    return x * torch.rsqrt((x * x).sum(0, keepdim=True).clamp_min(1e-24))


class ClusteredTopK:
    """Top-k column indices of ``Q^T K`` rows from clustered keys (state kept across calls).

    Args:
        k: entries per row.
        cluster_size: mean keys per cluster.
        probes: clusters scored per query (nearest centroids to the query's cluster).
        rebuild: recluster the keys every this many calls (keys move while training).
        iterations: k-means iterations per rebuild.
        certify: make the result exact (bound check + dense fallback of failing rows).
        chunk: elements per dense block (memory bound of the assignment and fallback steps).
        seed: seed of the k-means initialisation.
        search_every: run the clustered search on every this many calls; the calls between
            rescore the last search's ``width`` best columns per row with the current keys
            and queries (one SDDMM, ``R * width * d``) and keep the best ``k`` of them: the
            picks follow the keys' drift within those candidates. 1 (the default) searches on
            every call; ``certify`` always does.
        width: candidates kept per row for those calls (default ``k + k // 2``).
    """

    def __init__(
        self,
        k: int,
        *,
        cluster_size: int = 64,
        probes: int = 16,
        rebuild: int = 10,
        iterations: int = 6,
        certify: bool = False,
        chunk: int = 1 << 23,
        seed: int = 0,
        search_every: int = 1,
        width: int | None = None,
    ):
        self.k, self.cluster_size, self.probes = int(k), int(cluster_size), int(probes)
        self.rebuild, self.iterations, self.certify = int(rebuild), int(iterations), certify
        self.chunk, self.seed = int(chunk), int(seed)
        self.search_every = 1 if certify else max(1, int(search_every))
        self.width = self.k + self.k // 2 if width is None else max(int(width), self.k)
        self.calls = 0  # calls of this search (rescoring ones included)
        self.searches = 0  # clustered searches run
        self.candidates: Tensor | None = None  # (R, width) the last search's best columns
        self.assignment: Tensor | None = None  # (N,) cluster of every key
        self.previous: Tensor | None = None  # (R, k) last call's result
        # (R, k) ascending positions of the last rescoring's picks among the candidates: a
        # cache (None after a search), see _rescore
        self.slots: Tensor | None = None
        self.last_certified = 1.0  # fraction of rows the bounds certified on the last call

    # ------------------------------------------------------------------ state
    #: Names of :meth:`state`'s tensors.
    STATE = ("counters", "candidates", "assignment")

    def state(self) -> dict[str, Tensor]:
        """The search's state as tensors (checkpoints), besides its last result.

        ``counters`` ``[calls, searches]``, ``candidates`` (R, width) and the key clusters
        ``assignment`` (N,) (empty when there are none yet). With :attr:`previous` (the
        caller's stored picks) a restored search repeats the calls of the saved one exactly.
        """
        none = torch.empty(0, dtype=torch.int64)
        return {
            "counters": torch.tensor([self.calls, self.searches], dtype=torch.int64),
            "candidates": none if self.candidates is None else self.candidates,
            "assignment": none if self.assignment is None else self.assignment,
        }

    def restore(self, state: dict[str, Tensor]) -> None:
        """Adopt a :meth:`state` (missing entries: as a new search has them)."""
        counters = state.get("counters")
        self.calls, self.searches = (0, 0) if counters is None else map(int, counters.tolist())
        candidates, assignment = state.get("candidates"), state.get("assignment")
        self.candidates = None if candidates is None or not candidates.numel() else candidates
        self.assignment = None if assignment is None or not assignment.numel() else assignment
        self.slots = None

    # ------------------------------------------------------------------ clustering
    def _nearest(self, points: Tensor, centroids: Tensor) -> Tensor:
        """Index of the nearest (largest-cosine) centroid for each column of ``points``."""
        n, c = points.shape[1], centroids.shape[1]
        step = max(1, self.chunk // max(c, 1))
        out = torch.empty(n, dtype=torch.long, device=points.device)
        for start in range(0, n, step):
            out[start : start + step] = (points[:, start : start + step].t() @ centroids).argmax(1)
        return out

    def _centroids(self, keys: Tensor, assignment: Tensor, clusters: int) -> Tensor:
        sums = torch.zeros(keys.shape[0], clusters, dtype=keys.dtype, device=keys.device)
        return _unit(sums.index_add_(1, assignment, keys))

    def _cluster(self, keys: Tensor) -> Tensor:
        n = keys.shape[1]
        clusters = max(1, math.ceil(n / self.cluster_size))
        g = torch.Generator().manual_seed(self.seed + self.searches)  # new seeds: new clusters
        start = torch.randperm(n, generator=g)[:clusters].to(keys.device)
        centroids = keys[:, start]
        for _ in range(self.iterations):
            assignment = self._nearest(keys, centroids)
            centroids = self._centroids(keys, assignment, clusters)
        return self._nearest(keys, centroids)

    # ------------------------------------------------------------------ search
    @torch.no_grad()
    def __call__(
        self, queries: Tensor, keys: Tensor, *, with_scores: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Indices ``(R, k)`` of the top-k columns (approximate; exact with ``certify``).

        Ascending within a row, int32 below 2^31 keys (:func:`~deep3dmm.nn.sparse.index_dtype`).

        Args:
            queries: ``(d, R)`` unit columns.
            keys: ``(d, N)`` unit columns.
            with_scores: also return the picks' scores ``(R, k)``, ``<q_i, k_j>`` as the
                search computed them (no second pass over the picks).
        """
        rows, n = queries.shape[1], keys.shape[1]
        reuse = (
            self.calls % self.search_every != 0
            and self.candidates is not None
            and self.candidates.shape[0] == rows
            and self.candidates.device == keys.device
            and int(self.candidates.max()) < n
        )
        self.calls += 1
        if reuse:  # picked from the ascending candidates in their order: ascending
            index, scores = self._rescore(queries, keys, min(self.k, n))
        else:
            index, scores = self._search(queries, keys)
            index, order = index.sort(dim=1)  # ascending within a row
            scores = None if scores is None else scores.gather(1, order)
        index = index.to(index_dtype(n))
        self.previous = index
        if not with_scores:
            return index
        if scores is None:  # certified rows were recomputed: score the picks
            scores = _sddmm(
                regular_pointers(rows, index.shape[1], index), index.reshape(-1), (rows, n),
                queries.t().contiguous(), keys.t().contiguous(),
            ).view(rows, -1)  # fmt: skip
        return index, scores

    def _rescore(self, queries: Tensor, keys: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Best ``k`` of each row's candidates by the current scores, and those scores.

        ``(R, k)`` each, ascending columns: the candidates are stored ascending and the picks
        keep candidate order (each pick goes to its rank among the row's picks, one cumulative
        sum over the row's pick mask; no sort, no boolean indexing).

        Between searches the keys drift slowly and most rows keep their picks: a row whose
        lowest picked score is strictly above its best unpicked one has the same (unique)
        top-k as before, so only the other rows run ``topk`` (an (R, 48) ``topk`` costs more
        than the SDDMM that scores the candidates). The result is the ``topk`` of every row.
        """
        cand = self.candidates
        rows, width = cand.shape
        q_rows, k_rows = queries.t().contiguous(), keys.t().contiguous()
        pointers = regular_pointers(rows, width, cand)
        scores = _sddmm(pointers, cand.reshape(-1), (rows, k_rows.shape[0]), q_rows, k_rows)
        scores = scores.view(rows, width)
        if width == k:  # nothing to choose from: the last search's picks
            return cand, scores
        if self.slots is None or self.slots.shape != (rows, k):
            self.slots = self._pick(scores, k)
        else:
            lowest = scores.gather(1, self.slots).amin(1)  # (R,)
            picked = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
            best_other = scores.masked_fill(picked.scatter_(1, self.slots, True), -torch.inf)
            moved = (lowest <= best_other.amax(1)).nonzero().squeeze(1)  # picks may change
            if moved.numel():
                self.slots.index_copy_(0, moved, self._pick(scores.index_select(0, moved), k))
        return cand.gather(1, self.slots), scores.gather(1, self.slots)

    @staticmethod
    def _pick(scores: Tensor, k: int) -> Tensor:
        """Ascending positions ``(R, k)`` of each row's ``k`` best scores."""
        top = scores.topk(k, dim=1, sorted=False).indices  # (R, k) slots, in any order
        picked = torch.zeros(scores.shape, dtype=torch.uint8, device=scores.device)
        rank = picked.scatter_(1, top, 1).cumsum(1, dtype=top.dtype).gather(1, top) - 1
        return torch.empty_like(top).scatter_(1, rank, top)

    def _search(self, queries: Tensor, keys: Tensor) -> tuple[Tensor, Tensor | None]:
        """The clustered search: ``(index (R, k) long, any order; their scores or None)``."""
        rows, n = queries.shape[1], keys.shape[1]
        k = min(self.k, n)
        keep = k if self.search_every == 1 else min(self.width, n)  # candidates per row
        if (
            self.assignment is None
            or self.assignment.shape[0] != n
            or (self.searches % self.rebuild == 0)
        ):
            self.assignment = self._cluster(keys)
        self.searches += 1
        assignment = self.assignment.to(keys.device)
        clusters = int(assignment.max()) + 1
        centroids = self._centroids(keys, assignment, clusters)  # (d, C), current keys
        sizes = torch.bincount(assignment, minlength=clusters)
        order = torch.argsort(assignment, stable=True)  # keys grouped by cluster
        starts = torch.cumsum(sizes, 0) - sizes
        width = int(sizes.max())
        slot = torch.arange(n, device=keys.device) - starts[assignment[order]]
        members = torch.full((clusters, width), -1, dtype=torch.long, device=keys.device)
        members[assignment[order], slot] = order  # (C, width), -1 padded
        probes = min(self.probes, clusters)
        near = (centroids.t() @ centroids).topk(probes, dim=1).indices  # (C, P) incl. itself
        group = self._nearest(queries, centroids)  # (R,)
        row_order = torch.argsort(group, stable=True)
        counts = torch.bincount(group, minlength=clusters).tolist()
        index = torch.empty(rows, keep, dtype=torch.long, device=keys.device)
        best = torch.empty(rows, keep, dtype=keys.dtype, device=keys.device)
        probed_columns = members[near].reshape(clusters, -1)  # (C, P*width), -1 padded
        valid = probed_columns >= 0
        columns_of = torch.split(probed_columns[valid], valid.sum(1).tolist())
        q_rows, k_rows = queries.t().contiguous(), keys.t().contiguous()  # (R, d), (N, d)
        everything = torch.arange(n, device=keys.device)
        for c, rows_c in enumerate(torch.split(row_order, counts)):
            if rows_c.numel() == 0:
                continue
            columns = columns_of[c] if columns_of[c].numel() >= keep else everything
            scores = q_rows.index_select(0, rows_c) @ k_rows.index_select(0, columns).t()
            top = scores.topk(keep, dim=1, sorted=False)  # (rows_c, keep) of the probed keys
            index[rows_c] = columns[top.indices]
            best[rows_c] = top.values
        previous = self.previous
        if previous is not None and previous.shape == (rows, k):
            index, best = self._merge(q_rows, k_rows, index, best, previous.to(keys.device),
                                      group, assignment, near)  # fmt: skip
        # ascending (see _rescore)
        self.candidates = index.sort(dim=1).values.to(index_dtype(n))
        self.slots = None
        if keep > k:  # the keep best are the candidates of the rescoring calls
            top = best.topk(k, dim=1, sorted=False)
            index, best = index.gather(1, top.indices), top.values
        if self.certify:
            kth = best.amin(1)
            self._certify(queries, keys, centroids, assignment, near, group, index, kth, k)
            return index, None  # recomputed rows: their scores are not in ``best``
        return index, best

    def _merge(self, q_rows, k_rows, index, best, previous, group, assignment, near):
        """Best ``keep`` of this call's ``(R, keep)`` and the last ``(R, k)`` picks, rescored.

        Previous columns inside a probed cluster were scored already (their new scores are
        masked out), so no column appears twice. The previous picks are scored by one SDDMM
        (no ``(R k, d)`` gathered copies: 430 MB at 80k vertices, k = 32).
        """
        clusters, keep = near.shape[0], index.shape[1]
        rows, k = previous.shape
        probed = torch.zeros(clusters, clusters, dtype=torch.bool, device=index.device)
        probed[torch.arange(clusters, device=index.device)[:, None], near] = True
        pointers = regular_pointers(rows, k, previous)
        scores = _sddmm(pointers, previous.reshape(-1), (rows, k_rows.shape[0]), q_rows, k_rows)
        scores = scores.view(rows, k).masked_fill(
            probed[group[:, None], assignment[previous]], float("-inf")
        )
        top = torch.cat([best, scores], 1).topk(keep, dim=1, sorted=False)
        return torch.cat([index, previous], 1).gather(1, top.indices), top.values

    def _certify(self, queries, keys, centroids, assignment, near, group, index, kth, k):
        """Recompute from their dense rows the rows the bounds do not certify (in place).

        A row is certified when no unprobed cluster's bound reaches its k-th score.
        """
        rows, clusters = queries.shape[1], centroids.shape[1]
        cosine = (centroids[:, assignment] * keys).sum(0).clamp(-1.0, 1.0)  # (N,)
        radius = torch.zeros(clusters, dtype=keys.dtype, device=keys.device)
        radius = radius.scatter_reduce(0, assignment, torch.acos(cosine), "amax")
        probed = torch.zeros(clusters, clusters, dtype=torch.bool, device=keys.device)
        probed[torch.arange(clusters, device=keys.device)[:, None], near] = True
        stale = []
        step = max(1, self.chunk // clusters)
        margin = 1e-5 if keys.dtype == torch.float32 else 1e-10  # rounding of acos / cos
        for start in range(0, rows, step):
            stop = min(start + step, rows)
            angle = torch.acos((queries[:, start:stop].t() @ centroids).clamp(-1.0, 1.0))
            bound = torch.cos((angle - radius - margin).clamp_min(0.0))  # (rows, C)
            bound = bound.masked_fill(probed[group[start:stop]], float("-inf"))
            stale.append(start + (bound.amax(1) >= kth[start:stop] - margin).nonzero()[:, 0])
        stale = torch.cat(stale)
        self.last_certified = 1.0 - stale.numel() / max(rows, 1)
        step = max(1, self.chunk // keys.shape[1])
        for start in range(0, stale.numel(), step):
            part = stale[start : start + step]
            scores = queries[:, part].t() @ keys
            index[part] = scores.topk(k, dim=1, sorted=False).indices

    @staticmethod
    @torch.no_grad()
    def recall(index: Tensor, queries: Tensor, keys: Tensor, chunk_rows: int = 1024) -> float:
        """Fraction of the exact top-k entries (dense rows, chunked) that ``index`` holds."""
        k = index.shape[1]
        hits = 0
        for start in range(0, index.shape[0], chunk_rows):
            exact = (queries[:, start : start + chunk_rows].t() @ keys).topk(k, dim=1).indices
            found = index[start : start + chunk_rows]
            hits += int((exact[:, :, None] == found[:, None, :]).any(2).sum())
        return hits / index.numel()
