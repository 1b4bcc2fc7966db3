"""Small procedural hierarchies for the nn tests (built once per session)."""

from __future__ import annotations

import pytest

from deep3dmm.mesh import shapes
from deep3dmm.mesh.hierarchy import MeshHierarchy


@pytest.fixture(scope="session")
def small_hierarchy():
    """Icosphere(2) (162 vertices) with factors (2, 2): 162 -> 81 -> 41 vertices."""
    return MeshHierarchy.build(shapes.icosphere(2), factors=(2, 2), spiral_length=7)


@pytest.fixture(scope="session")
def tiny_hierarchy():
    """Icosphere(1) (42 vertices) with factors (2, 2): for the overfit tests."""
    return MeshHierarchy.build(shapes.icosphere(1), factors=(2, 2), spiral_length=7)


@pytest.fixture(scope="session")
def coma_hierarchy(coma_template_path, tmp_path_factory):
    from deep3dmm.mesh import Template

    template = Template.load(coma_template_path)
    return MeshHierarchy.cached(
        template, cache_dir=tmp_path_factory.mktemp("hier"), factors=(4, 4, 4, 4)
    )
