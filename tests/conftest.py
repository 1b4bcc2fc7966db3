"""Shared fixtures: the optional ../shared/data folder and small procedural meshes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """Path of a file under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not present (../shared/data is test material beside the project)")
    return path


@pytest.fixture
def coma_template_path() -> Path:
    return shared_file("templates/coma_template.obj")


@pytest.fixture
def smpl_template_path() -> Path:
    return shared_file("templates/smpl_man.obj")


@pytest.fixture
def ict_face_path() -> Path:
    return shared_file("ict_face/ict_face_region.npz")
