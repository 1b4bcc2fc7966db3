"""Tiny procedural prepared datasets and run configurations for the training tests."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from deep3dmm.data import IndexRow, write_prepared_dataset
from deep3dmm.mesh import Template, shapes
from deep3dmm.train.config import (
    DataConfig,
    HierarchyConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)

# ---- stand-in of the deep3dmm.nn contract, used only while deep3dmm.nn is absent ----


def _sparse(matrix) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.tensor([coo.row, coo.col], dtype=torch.long)
    return torch.sparse_coo_tensor(indices, torch.tensor(coo.data), coo.shape).coalesce()


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    b, v, c = x.shape
    flat = x.permute(1, 0, 2).reshape(v, b * c)
    return torch.sparse.mm(matrix, flat).reshape(-1, b, c).permute(1, 0, 2)


class StandInAutoencoder(nn.Module):
    def __init__(self, hierarchy, config):
        super().__init__()
        self.config = dict(config, hierarchy_hash=hierarchy.hash)
        channels = [3, *config["channels"]]
        levels = len(channels) - 1
        self.spirals = [hierarchy.spirals[level] for level in range(levels + 1)]
        self.down = [_sparse(hierarchy.down[level]).float() for level in range(levels)]
        self.up = [_sparse(hierarchy.up[level]).float() for level in range(levels)]
        self.enc = nn.ModuleList(
            nn.Linear(self.spirals[i].shape[1] * channels[i], channels[i + 1])
            for i in range(levels)
        )
        self.dec = nn.ModuleList(
            nn.Linear(self.spirals[i].shape[1] * channels[i + 1], channels[i])
            for i in range(levels)
        )
        coarse = hierarchy.num_vertices[levels]
        self.to_latent = nn.Linear(coarse * channels[-1], config["latent"])
        self.from_latent = nn.Linear(config["latent"], coarse * channels[-1])
        self.coarse = (coarse, channels[-1])

    def _conv(self, linear, spiral, x):
        b, v, _ = x.shape
        return linear(x[:, spiral.reshape(-1)].reshape(b, v, -1))

    def encode(self, x):
        for i, linear in enumerate(self.enc):
            x = _apply(self.down[i], nn.functional.elu(self._conv(linear, self.spirals[i], x)))
        return self.to_latent(x.flatten(1))

    def decode(self, z):
        x = self.from_latent(z).reshape(len(z), *self.coarse)
        for i in reversed(range(len(self.dec))):
            x = self._conv(self.dec[i], self.spirals[i], _apply(self.up[i], x))
            if i:
                x = nn.functional.elu(x)
        return x

    def forward(self, x):
        return self.decode(self.encode(x))

    @classmethod
    def build(cls, hierarchy, conv="spiral", pool="fixed", latent=16, channels=(32, 32), **kw):
        config = {"conv": conv, "pool": pool, "latent": latent, "channels": list(channels)}
        return cls(hierarchy, config)

    @classmethod
    def from_config(cls, config, hierarchy):
        return cls(hierarchy, {k: v for k, v in config.items() if k != "hierarchy_hash"})


def install() -> None:
    """Register the stand-in as deep3dmm.nn when the real package is missing."""
    try:
        from deep3dmm.nn import MeshAutoencoder  # noqa: F401

        return
    except ImportError:
        pass
    module = types.ModuleType("deep3dmm.nn")
    module.MeshAutoencoder = StandInAutoencoder
    module.PRESETS = {"deep3dmm-spiral": {"conv": "spiral", "pool": "attention"}}
    module.build_preset = lambda name, h, **kw: StandInAutoencoder.build(
        h, **{**module.PRESETS[name], **kw}
    )
    sys.modules["deep3dmm.nn"] = module


install()


def deformed_spheres(count: int, *, subdivisions: int = 2, seed: int = 0, radius: float = 0.1):
    """``count`` smooth deformations of an icosphere (axis scalings + a low-frequency bump)."""
    vertices, faces = shapes.icosphere(subdivisions, radius=radius)
    rng = np.random.default_rng(seed)
    scales = 1.0 + 0.2 * rng.standard_normal((count, 1, 3))
    bump = 0.1 * rng.standard_normal((count, 1, 1)) * vertices[None, :, :1] / radius
    meshes = (vertices[None] * scales * (1.0 + bump)).astype(np.float32)
    return Template(vertices, faces, name="sphere", unit="m"), meshes


def write_spheres(path, count: int = 24, *, subdivisions: int = 2, seed: int = 0):
    template, meshes = deformed_spheres(count, subdivisions=subdivisions, seed=seed)
    rows = [IndexRow(f"s{i % 3}", f"seq{(i // 3) % 2}", i, f"synthetic/{i}") for i in range(count)]
    return write_prepared_dataset(path, template, meshes, rows, source="spheres", unit="m")


@pytest.fixture(autouse=True)
def _hierarchy_cache(tmp_path_factory, monkeypatch):
    """Keep hierarchy caches out of the user's home."""
    monkeypatch.setenv("DEEP3DMM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def spheres(tmp_path_factory):
    """24 deformed icospheres (162 vertices), subjects s0-s2, sequences seq0-seq1."""
    return write_spheres(tmp_path_factory.mktemp("data") / "spheres")


@pytest.fixture(scope="session")
def spheres8(tmp_path_factory):
    """10 meshes: a random split leaves exactly 8 train meshes (1 val, 1 test)."""
    return write_spheres(tmp_path_factory.mktemp("data") / "spheres10", count=10, seed=1)


def tiny_config(data_path, *, conv="spiral", pool="fixed", epochs=2, batch_size=4, **train):
    """A small, fast run configuration on a prepared dataset."""
    return RunConfig(
        data=DataConfig(path=str(data_path), protocol="random"),
        hierarchy=HierarchyConfig(factors=(4, 4), spiral_length=9),
        model=ModelConfig(
            preset="", conv=conv, pool=pool, latent=4, channels=(8, 8), K=3, top_k=(4, 8)
        ),
        optim=OptimConfig(lr=1e-3),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu", **train),
    )


@pytest.fixture(name="tiny_config", scope="session")
def tiny_config_fixture():
    return tiny_config


@pytest.fixture(name="write_spheres", scope="session")
def write_spheres_fixture():
    return write_spheres
