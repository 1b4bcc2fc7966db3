"""Shared fixtures: the optional ../shared/data folder and small procedural meshes."""

from __future__ import annotations

from pathlib import Path

import pytest

from deep3dmm.train.config import (
    DataConfig,
    HierarchyConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)

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


@pytest.fixture
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Point ``DEEP3DMM_CACHE`` (hierarchy caches) at the session's temporary folder."""
    path = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("DEEP3DMM_CACHE", str(path))
    return path


def tiny_config(data_path, *, conv="spiral", pool="fixed", epochs=2, batch_size=4, **train):
    """A small, fast run configuration on a prepared dataset."""
    return RunConfig(
        data=DataConfig(path=str(data_path), protocol="random"),
        hierarchy=HierarchyConfig(factors=(4, 4), spiral_length=9),
        model=ModelConfig(conv=conv, pool=pool, latent=4, channels=(8, 8), K=3, top_k=(4, 8)),
        optim=OptimConfig(lr=1e-3),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu", **train),
    )


@pytest.fixture(name="tiny_config", scope="session")
def tiny_config_fixture():
    """:func:`tiny_config` (a function: ``tiny_config(data_path, conv=, pool=, ...)``)."""
    return tiny_config


@pytest.fixture(scope="session")
def trained_run_dir(tmp_path_factory):
    """A spiral + attention run (2 epochs, seconds) on 12 bumpy icospheres (162 vertices, m).

    Shared by the export and viewer tests; its hierarchy cache lives in the session's
    temporary folder.
    """
    import numpy as np

    from deep3dmm.data import IndexRow, write_prepared_dataset
    from deep3dmm.mesh import Template, shapes
    from deep3dmm.train import train

    base = tmp_path_factory.mktemp("trained")
    vertices, faces = shapes.icosphere(2, radius=0.1)
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(12, 3))  # one bump direction and amplitude per mesh
    bump = np.clip(vertices @ axes.T / 0.1, 0, None)  # (V, 12)
    meshes = vertices[None] * (1.0 + 0.2 * bump.T[:, :, None])  # (12, V, 3)
    rows = [IndexRow(f"s{i % 3}", f"seq{i // 3}", i, f"synthetic/{i}") for i in range(12)]
    data = write_prepared_dataset(
        base / "bumps",
        Template(vertices, faces, name="sphere", unit="m"),
        meshes.astype(np.float32),
        rows,
        source="bumps",
        unit="m",
    )
    out = base / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEP3DMM_CACHE", str(base / "cache"))
        train(tiny_config(data.path, pool="attention"), out, quiet=True)
    return out
