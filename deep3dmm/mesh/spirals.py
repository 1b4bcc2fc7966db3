r"""Spiral sequences of vertex indices for spiral convolutions.

SpiralNet++ (Gong et al., ICCV Workshops 2019) and Neural3DMM (Bouritsas et al., ICCV
2019): the spiral of a vertex ``v`` is ``v`` itself, then its 1-ring in counter-clockwise
order (seen from the side the triangles' normals point to, i.e. the order given by the
face orientation), then the next rings in the same rotational sense, truncated to
``L * d`` entries and dilated by keeping every ``d``-th:

.. math::
    S(v) = (v, r^1_1, r^1_2, \ldots, r^2_1, \ldots)[0 : L d : d].

Ring ``k + 1`` is gathered by walking ring ``k`` in order and, around each of its
vertices ``w``, taking ``w``'s unvisited neighbours counter-clockwise starting right after
a visited one. The 1-ring starts at its smallest vertex index (at the start of the fan
on a boundary vertex) or, Neural3DMM style, at the neighbour closest (geodesically,
along edges) to a reference vertex. When a vertex's connected component is exhausted
(small components, isolated vertices) the spiral is padded with the nearest (Euclidean)
vertices not yet in it, and cyclically repeated when the whole mesh is smaller than
``L * d``: every index is always in range.

Everything is vectorised over vertices with numpy; the loops run over ring steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from deep3dmm.errors import ConfigError
from deep3dmm.mesh.unique import unique_ints, unique_rows

__all__ = ["ordered_one_ring", "spiral_indices"]


def _pack(rows: np.ndarray, values: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Ragged entries (sorted by row, in order within a row) -> ``(num_rows, K)`` with -1 pads."""
    counts = np.bincount(rows, minlength=num_rows)
    width = int(counts.max()) if len(counts) else 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    columns = np.arange(len(rows)) - starts[rows]
    out = np.full((num_rows, width), -1, dtype=np.int64)
    out[rows, columns] = values
    return out, counts


def _first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Boolean mask keeping the first occurrence of each key (order kept)."""
    _, first = unique_ints(keys, return_index=True)
    mask = np.zeros(len(keys), dtype=bool)
    mask[first] = True
    return mask


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``keys in sorted_keys`` elementwise (``sorted_keys`` sorted and unique)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[position] == keys


def ordered_one_ring(faces: np.ndarray, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's neighbours in counter-clockwise order (from the face orientation).

    A triangle ``(a, b, c)`` tells that, around ``a``, ``c`` follows ``b``. An interior
    vertex's fan is a cycle, started at its smallest neighbour; a boundary vertex's fan
    is a path, started at its free end. Neighbours a non-manifold vertex's walk cannot
    reach are appended in index order.

    Args:
        faces: ``(F, 3)`` triangles.
        num_vertices: ``V`` (isolated vertices get an empty ring).

    Returns:
        ``(ring, valence)``: ``ring`` ``(V, K) int64`` padded with -1, ``valence`` ``(V,)``.
    """
    n = int(num_vertices)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    centre = faces.ravel()
    before = faces[:, [1, 2, 0]].ravel()
    after = faces[:, [2, 0, 1]].ravel()
    from_keys, first = unique_ints(centre * n + before, return_index=True)  # sorted, unique
    next_vertex = after[first]
    to_keys = unique_ints(centre * n + after)
    neighbour_keys = unique_ints(np.concatenate([from_keys, to_keys]))  # every pair
    if len(neighbour_keys) == 0:
        return np.full((n, 0), -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    nb_rows, nb_cols = neighbour_keys // n, neighbour_keys % n

    # Start: the smallest neighbour, or on a boundary the fan's free end (no predecessor).
    start = np.full(n, -1, dtype=np.int64)
    rows, first_of_row = unique_ints(nb_rows, return_index=True)
    start[rows] = nb_cols[first_of_row]
    free = ~_contains(to_keys, from_keys)
    free_rows, free_cols = from_keys[free] // n, from_keys[free] % n
    rows, first_of_row = unique_ints(free_rows, return_index=True)
    start[rows] = free_cols[first_of_row]

    max_valence = int(np.bincount(nb_rows, minlength=n).max())
    walk = np.full((n, max_valence), -1, dtype=np.int64)
    walk[:, 0] = start
    current, active = start.copy(), start >= 0
    centres = np.arange(n)
    for step in range(1, max_valence):
        key = centres[active] * n + current[active]
        position = np.minimum(np.searchsorted(from_keys, key), len(from_keys) - 1)
        found = from_keys[position] == key
        following = next_vertex[position]
        ok = found & (following != start[active])
        index = np.flatnonzero(active)
        active[index[~ok]] = False
        walk[index[ok], step] = following[ok]
        current[index[ok]] = following[ok]
        if not active.any():
            break

    # Entries in walk order, then the unreached neighbours; drop repeats.
    walk_rows, walk_steps = np.nonzero(walk >= 0)
    walk_values = walk[walk_rows, walk_steps]
    reached = unique_ints(walk_rows * n + walk_values)
    missing = ~_contains(reached, neighbour_keys)
    rows_all = np.concatenate([walk_rows, nb_rows[missing]])
    values_all = np.concatenate([walk_values, nb_cols[missing]])
    order_all = np.concatenate([walk_steps, max_valence + nb_cols[missing]])
    order = np.lexsort((order_all, rows_all))
    rows_all, values_all = rows_all[order], values_all[order]
    keep = _first_occurrences(rows_all * n + values_all)
    return _pack(rows_all[keep], values_all[keep], n)


def _rotate_to_reference(ring: np.ndarray, valence: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Rotate each ring cyclically so that it starts at its neighbour nearest the reference."""
    padded = np.where(ring >= 0, distance[np.maximum(ring, 0)], np.inf)  # (V, K)
    shift = np.argmin(padded, axis=1)
    shift[~np.isfinite(padded.min(axis=1))] = 0
    columns = np.arange(ring.shape[1])[None, :]
    source = (columns + shift[:, None]) % np.maximum(valence, 1)[:, None]
    rotated = np.take_along_axis(ring, source, axis=1)
    return np.where(columns < valence[:, None], rotated, -1)


def _geodesic_distance(vertices: np.ndarray, faces: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Shortest edge-path length from the nearest source vertex ``(V,)`` (inf if unreachable)."""
    n = len(vertices)
    edges = unique_rows(np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1))
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1) + 1e-12
    graph = sp.csr_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return dijkstra(graph, directed=False, indices=sources, min_only=True)


def _next_ring(
    ring: np.ndarray,
    valence: np.ndarray,
    last_rows: np.ndarray,
    last_values: np.ndarray,
    seen: np.ndarray,
    count: np.ndarray,
    need: int,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Ring ``k + 1`` of each spiral, walked lazily: a row stops once it holds ``need`` entries.

    Ring ``k`` is given as ``(last_rows, last_values)`` (sorted by row, in spiral order).
    Step ``j`` takes the ``j``-th ring-``k`` vertex ``w`` of every row still short and
    appends ``w``'s neighbours not in ``seen`` (rings ``<= k``; sorted ``row * n + vertex``
    keys), counter-clockwise from right after a visited one, dropping those an earlier
    ``w`` of the same row brought. Rows that stop early never grow another ring; the
    others get their whole ring ``k + 1``, in the same order as a full walk. ``count``
    ``(n,)`` is updated in place.

    Returns:
        ``(rows, values)`` of the new entries, sorted by row, in spiral order.
    """
    first_of_row = np.flatnonzero(np.r_[True, last_rows[1:] != last_rows[:-1]])
    position = np.arange(len(last_rows)) - np.repeat(
        first_of_row, np.diff(np.r_[first_of_row, len(last_rows)])
    )
    found = np.zeros(0, dtype=np.int64)  # sorted keys of this ring's entries so far
    out_rows, out_values = [], []
    for step in range(int(position.max()) + 1 if len(position) else 0):
        take = np.flatnonzero(position == step)
        take = take[count[last_rows[take]] < need]
        if not len(take):
            break
        row_of, w = last_rows[take], last_values[take]  # (T,) one w per row
        # Expand each w into its ordered neighbours (entry, j, u).
        size = valence[w]
        entry = np.repeat(np.arange(len(take)), size)
        group_start = np.concatenate([[0], np.cumsum(size)[:-1]])
        j = np.arange(len(entry)) - group_start[entry]
        rows = row_of[entry]
        values = ring[w[entry], j]
        inside = _contains(seen, rows * n + values)
        previous = group_start[entry] + (j - 1) % size[entry]
        boundary = inside[previous] & ~inside  # an unvisited vertex right after a visited one
        first_new = np.full(len(take), np.iinfo(np.int64).max)
        np.minimum.at(first_new, entry[boundary], j[boundary])
        first_new[first_new == np.iinfo(np.int64).max] = 0
        rotated = (j - first_new[entry]) % size[entry]
        order = np.lexsort((rotated, entry))  # entries are sorted by row
        new = order[~inside[order]]
        rows, values = rows[new], values[new]
        keys = rows * n + values
        fresh = ~_contains(found, keys)  # not brought by an earlier w of the row
        rows, values, keys = rows[fresh], values[fresh], keys[fresh]
        found = np.sort(np.concatenate([found, keys]))
        out_rows.append(rows)
        out_values.append(values)
        count += np.bincount(rows, minlength=n)
    rows = np.concatenate(out_rows) if out_rows else np.zeros(0, dtype=np.int64)
    values = np.concatenate(out_values) if out_values else np.zeros(0, dtype=np.int64)
    order = np.argsort(rows, kind="stable")  # steps in order within each row
    return rows[order], values[order]


def spiral_indices(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    length: int,
    dilation: int = 1,
    reference_vertices: Sequence[int] | np.ndarray | None = None,
) -> torch.Tensor:
    """Spiral index sequences of every vertex of a mesh.

    Args:
        vertices: ``(V, 3)`` positions (for padding and reference distances).
        faces: ``(F, 3)`` triangles; their orientation fixes the rotational sense.
        length: spiral length ``L`` (>= 1), the centre included.
        dilation: keep every ``d``-th entry of the first ``L * d`` (>= 1).
        reference_vertices: Neural3DMM-style reference vertex indices (typically one per
            connected component): each 1-ring starts at the neighbour with the shortest
            edge-path distance to the nearest reference. ``None``: SpiralNet++ style.

    Returns:
        ``(V, L)`` LongTensor; column 0 is the vertex itself.

    Shapes:
        - vertices: ``(V, 3)``, faces: ``(F, 3)`` -> ``(V, L)``.
    """
    if int(length) < 1 or int(dilation) < 1:
        raise ConfigError(
            f"spiral length and dilation must be >= 1, got length={length}, dilation={dilation}",
            fix="use e.g. --spiral-length 9 --spiral-dilation 1",
        )
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    n, need = len(vertices), int(length) * int(dilation)
    ring, valence = ordered_one_ring(faces, n)
    if reference_vertices is not None and len(reference_vertices) and ring.shape[1]:
        sources = np.asarray(reference_vertices, dtype=np.int64)
        if sources.min() < 0 or sources.max() >= n:
            raise ConfigError(
                f"reference vertices must lie in [0, {n}), got {sources.tolist()}",
                fix="give vertex indices of the template",
            )
        ring = _rotate_to_reference(ring, valence, _geodesic_distance(vertices, faces, sources))

    # Ragged spiral entries (row, value), chunk by chunk; chunks are appended ring by ring.
    centres = np.arange(n)
    ring_rows, ring_cols = np.nonzero(ring >= 0)
    chunks_rows, chunks_values = [centres, ring_rows], [centres, ring[ring_rows, ring_cols]]
    count = 1 + valence
    # Sorted (row, vertex) keys of every entry so far (unique by construction).
    seen = np.sort(np.concatenate([centres * n + centres, ring_rows * n + ring[ring >= 0]]))
    last_rows, last_values = ring_rows, ring[ring_rows, ring_cols]  # last ring, ordered by row

    while len(last_rows):
        wanted = count[last_rows] < need
        last_rows, last_values = last_rows[wanted], last_values[wanted]
        if not len(last_rows):
            break
        rows, values = _next_ring(ring, valence, last_rows, last_values, seen, count, need, n)
        chunks_rows.append(rows)
        chunks_values.append(values)
        seen = np.sort(np.concatenate([seen, rows * n + values]))
        last_rows, last_values = rows, values

    rows = np.concatenate(chunks_rows)
    order = np.argsort(rows, kind="stable")
    spirals, count = _pack(rows[order], np.concatenate(chunks_values)[order], n)
    if spirals.shape[1] < need:
        spirals = np.pad(spirals, ((0, 0), (0, need - spirals.shape[1])), constant_values=-1)
    spirals = spirals[:, :need]
    count = np.minimum(count, need)

    short = np.flatnonzero(count < need)
    if len(short):
        spirals[short] = _pad_short(vertices, spirals[short], count[short], short, need)
    return torch.from_numpy(np.ascontiguousarray(spirals[:, ::dilation]))


def _pad_short(
    vertices: np.ndarray, spirals: np.ndarray, count: np.ndarray, rows: np.ndarray, need: int
) -> np.ndarray:
    """Fill the -1 tail of short spirals with the nearest vertices not yet in them.

    When the mesh has fewer than ``need`` vertices, the sequence is repeated cyclically.
    """
    n = len(vertices)
    k = min(n, need)
    _, nearest = cKDTree(vertices).query(vertices[rows], k=k)
    nearest = np.asarray(nearest, dtype=np.int64).reshape(len(rows), k)  # (S, k)
    valid = spirals >= 0
    keys = unique_ints(np.repeat(np.arange(len(rows)), valid.sum(axis=1)) * n + spirals[valid])
    in_spiral = _contains(keys, np.arange(len(rows))[:, None] * n + nearest)
    # Candidates in distance order, not in the spiral, written after the existing entries.
    candidate_rows, candidate_cols = np.nonzero(~in_spiral)
    extra, extra_count = _pack(candidate_rows, nearest[candidate_rows, candidate_cols], len(rows))
    out = spirals.copy()
    columns = np.arange(need)[None, :]
    source = columns - count[:, None]  # position in the extra list
    take = (source >= 0) & (source < extra_count[:, None])
    r, c = np.nonzero(take)
    out[r, c] = extra[r, source[r, c]]
    # Still short (mesh smaller than need): repeat the filled prefix cyclically.
    filled = np.minimum(count + extra_count, need)
    cyclic = np.take_along_axis(out, columns % np.maximum(filled, 1)[:, None], axis=1)
    return np.where(columns < filled[:, None], out, cyclic)
