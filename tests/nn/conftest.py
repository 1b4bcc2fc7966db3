"""Small procedural hierarchies for the nn tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deep3dmm.mesh import shapes
from deep3dmm.mesh.hierarchy import MeshHierarchy


def loop_reference(conv, x):
    """Naive oracle of SpiralConv: a Python loop over vertices.

    Per vertex, the features along the spiral are concatenated, then mapped linearly.
    """
    import torch

    out = []
    for i in range(conv.num_vertices):
        feats = torch.cat([x[:, int(j)] for j in conv.spirals[i]], dim=-1)  # (B, L*C)
        out.append(feats @ conv.linear.weight.t() + conv.linear.bias)
    return torch.stack(out, 1)


@pytest.fixture(scope="session")
def small_hierarchy():
    """Icosphere(2) (162 vertices) with factors (2, 2): 162 -> 81 -> 41 vertices."""
    return MeshHierarchy.build(shapes.icosphere(2), factors=(2, 2), spiral_length=7)


@pytest.fixture(scope="session")
def tiny_hierarchy():
    """Icosphere(1) (42 vertices) with factors (2, 2): for the overfit tests."""
    return MeshHierarchy.build(shapes.icosphere(1), factors=(2, 2), spiral_length=7)


@pytest.fixture(scope="session")
def coma_hierarchy(tmp_path_factory):
    """The COMA template hierarchy (factors 4,4,4,4); skipped without ../shared/data."""
    from deep3dmm.mesh import Template

    path = Path(__file__).resolve().parents[2].parent / "shared/data/templates/coma_template.obj"
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data is test material beside the project)")
    template = Template.load(path)
    return MeshHierarchy.cached(
        template, cache_dir=tmp_path_factory.mktemp("hier"), factors=(4, 4, 4, 4)
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny meshes gain nothing from threads; under pytest-xdist they oversubscribe the cores
    (MKL's sparse products fork a thread team per call), so the nn tests run on one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
