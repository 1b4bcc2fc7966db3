"""The benchmark code kept beside the package (benchmarks/) still runs."""

import sys
from pathlib import Path

from deep3dmm.mesh import shapes

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_hierarchy_reports_timings():
    sys.path.insert(0, str(ROOT))
    from benchmarks.hierarchy import benchmark_hierarchy

    result = benchmark_hierarchy(shapes.icosphere(1), repeats=2, factors=(2,))
    assert result["num_vertices"] == [42, 21] and result["repeats"] == 2
    assert 0 < result["build_min_s"] <= result["build_s"]
    assert 0 < result["cached_load_min_s"] <= result["cached_load_s"]
