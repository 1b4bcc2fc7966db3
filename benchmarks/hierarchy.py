"""Timing of the mesh hierarchy: full build, and a warm-cache :meth:`MeshHierarchy.cached` call.

Called by ``scripts/benchmark.py``; the figures measured on the reference templates are in
``docs/hierarchy.md``.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

from deep3dmm.mesh.hierarchy import MeshHierarchy
from deep3dmm.mesh.template import Template

__all__ = ["benchmark_hierarchy"]


def benchmark_hierarchy(
    template: Template | tuple[np.ndarray, np.ndarray], repeats: int = 3, **params: object
) -> dict:
    """Median wall-clock seconds of building and of loading a template's hierarchy.

    Args:
        template: a :class:`~deep3dmm.mesh.Template` or ``(vertices, faces)``.
        repeats: timed repetitions of each measurement (the median is reported).
        **params: the keyword arguments of :meth:`MeshHierarchy.build`.

    Returns:
        ``{"num_vertices", "num_faces", "build_s", "build_min_s", "cached_load_s",
        "cached_load_min_s", "repeats"}``; ``cached_load`` is a call of
        :meth:`MeshHierarchy.cached` that finds its file (hash + ``.npz`` read).
    """
    build_times, load_times = [], []
    hierarchy = None
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        hierarchy = MeshHierarchy.build(template, **params)
        build_times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="deep3dmm-bench-") as cache_dir:
        MeshHierarchy.cached(template, cache_dir=cache_dir, **params)
        for _ in range(max(1, int(repeats))):
            start = time.perf_counter()
            MeshHierarchy.cached(template, cache_dir=cache_dir, **params)
            load_times.append(time.perf_counter() - start)
    return {
        "num_vertices": hierarchy.num_vertices,
        "num_faces": hierarchy.num_faces,
        "build_s": statistics.median(build_times),
        "build_min_s": min(build_times),
        "cached_load_s": statistics.median(load_times),
        "cached_load_min_s": min(load_times),
        "repeats": len(build_times),
    }
