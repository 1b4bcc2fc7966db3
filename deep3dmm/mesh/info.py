"""Summary of a mesh's geometry and topology (``deep3dmm mesh info``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from deep3dmm.mesh.template import guess_unit

__all__ = ["MeshInfo", "mesh_info"]


@dataclass(frozen=True)
class MeshInfo:
    """Counts and topology facts of one triangle mesh."""

    num_vertices: int
    num_faces: int
    num_edges: int
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    unit_guess: list[str]
    boundary_loops: int
    components: int
    unreferenced_vertices: int
    nonmanifold_edges: int
    euler_characteristic: int

    @property
    def edge_manifold(self) -> bool:
        """True when no edge is shared by more than two faces."""
        return self.nonmanifold_edges == 0

    def lines(self) -> list[str]:
        """Human-readable report, one fact per line."""
        lo = ", ".join(f"{x:.4g}" for x in self.bbox_min)
        hi = ", ".join(f"{x:.4g}" for x in self.bbox_max)
        size = ", ".join(f"{b - a:.4g}" for a, b in zip(self.bbox_min, self.bbox_max))
        unit = " or ".join(self.unit_guess) if self.unit_guess else "unknown (not human scale)"
        if len(self.unit_guess) > 1:
            unit += " (ambiguous)"
        return [
            f"vertices            {self.num_vertices}",
            f"faces               {self.num_faces}",
            f"edges               {self.num_edges}",
            f"bounding box min    ({lo})",
            f"bounding box max    ({hi})",
            f"size                ({size})",
            f"unit guess          {unit}",
            f"boundary loops      {self.boundary_loops}",
            f"components          {self.components}",
            f"unreferenced verts  {self.unreferenced_vertices}",
            f"manifold            {'yes' if self.edge_manifold else 'no'}"
            f" ({self.nonmanifold_edges} edges with > 2 faces)",
            f"Euler characteristic {self.euler_characteristic}",
        ]


def mesh_info(vertices: np.ndarray, faces: np.ndarray) -> MeshInfo:
    """Compute :class:`MeshInfo` for a triangle mesh.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` triangles.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces, dtype=np.int64)
    n = len(vertices)
    half = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)  # (3F, 2)
    edges, counts = np.unique(half, axis=0, return_counts=True)
    boundary = edges[counts == 1]
    # Boundary loops: connected components of the graph made by boundary edges.
    loops = 0
    if len(boundary):
        used = np.unique(boundary)
        remap = np.full(n, -1)
        remap[used] = np.arange(len(used))
        b = remap[boundary]
        graph = sp.coo_matrix((np.ones(len(b)), (b[:, 0], b[:, 1])), shape=(len(used),) * 2)
        loops = connected_components(graph, directed=False)[0]
    referenced = np.zeros(n, dtype=bool)
    referenced[faces.ravel()] = True
    graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    components = len(np.unique(labels[referenced]))
    return MeshInfo(
        num_vertices=n,
        num_faces=len(faces),
        num_edges=len(edges),
        bbox_min=tuple(float(x) for x in vertices.min(axis=0)),
        bbox_max=tuple(float(x) for x in vertices.max(axis=0)),
        unit_guess=guess_unit(vertices),
        boundary_loops=int(loops),
        components=int(components),
        unreferenced_vertices=int((~referenced).sum()),
        nonmanifold_edges=int((counts > 2).sum()),
        euler_characteristic=int(referenced.sum() - len(edges) + len(faces)),
    )
