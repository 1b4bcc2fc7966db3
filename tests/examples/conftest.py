"""Load the runnable scripts of ``examples/`` by path (they are not part of the package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(relative: str):
    """The module ``examples/<relative>.py`` (registered in ``sys.modules`` for dataclasses)."""
    name = "_example_" + relative.replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{relative}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def example():
    """``example("image_graph/stn_demo")``: the loaded script module."""
    return load_example
