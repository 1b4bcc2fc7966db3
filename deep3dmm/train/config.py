"""Run configuration: one frozen dataclass per concern, read from and written to TOML.

A run is fully described by a :class:`RunConfig`::

    [data]       which prepared dataset and how it is split
    [hierarchy]  the mesh hierarchy (deep3dmm.mesh.HierarchyConfig)
    [model]      the autoencoder (deep3dmm.nn.ModelConfig; ``preset = NAME`` starts from a preset)
    [optim]      optimiser, learning rate and its per-epoch exponential decay
    [train]      epochs, batch size, seed, device, data loading

Every option is declared once, with its default, check and help line
(:func:`deep3dmm.schema.option`); ``deep3dmm train`` generates its flags from these
declarations. ``RUN/config.toml`` holds the resolved configuration (every option spelled
out), so a run can be rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import tomli_w

from deep3dmm import schema
from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import ConfigError
from deep3dmm.mesh.config import HierarchyConfig
from deep3dmm.nn.config import ModelConfig

__all__ = [
    "DataConfig",
    "HierarchyConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "RunConfig",
    "load_config",
    "save_config",
    "config_to_toml",
    "read_toml",
    "write_toml",
]

CONFIG_HEADER = "deep3dmm run configuration (deep3dmm train --config FILE)"
PROTOCOLS = ("interpolation", "extrapolation", "identity", "random", "predefined")
OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")
IN_MEMORY = ("auto", "yes", "no")

option = schema.option


@dataclass(frozen=True)
class DataConfig:
    """Which prepared dataset to train on and how it is split.

    Args:
        path: prepared dataset folder; empty means the embedded default anny faces
            dataset (generated once into the cache and reused).
        protocol: split protocol (interpolation, extrapolation, identity, random, predefined).
        holdout: held-out sequence (extrapolation) or subject (identity); empty for none.
        val_fraction: fraction of meshes for validation.
        test_fraction: fraction of meshes for testing.
    """

    path: str = option(
        "", "prepared dataset (default: the generated anny faces)", flag="--data", metavar="DIR"
    )
    protocol: str = option("interpolation", "split protocol", choices=PROTOCOLS, flag="--split")
    holdout: str = option("", "held-out sequence (extrapolation) or subject (identity)")
    val_fraction: float = option(0.1, "fraction of meshes for validation")
    test_fraction: float = option(0.1, "fraction of meshes for testing")

    def __post_init__(self):
        schema.check_fields(self)
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Args:
        optimizer: "adam" (default) or "sgd" (with momentum, as in COMA).
        lr: initial learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lr_decay: per-epoch exponential decay factor (lr_e = lr * lr_decay ** e).
    """

    optimizer: str = option("adam", "optimiser", choices=OPTIMIZERS)
    lr: float = option(1e-3, "learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(0.0, "L2 weight decay")
    lr_decay: float = option(0.99, "per-epoch learning-rate decay")

    def __post_init__(self):
        schema.check_fields(self)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop.

    Args:
        epochs: number of epochs.
        batch_size: meshes per optimisation step (per process under torchrun).
        seed: seed of the model initialisation, the split and the per-epoch shuffles.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        in_memory: "auto" (hold the normalised train split in memory when it is smaller
            than ``memory_limit_mb``), "yes" or "no" (stream through a DataLoader).
        memory_limit_mb: threshold of ``in_memory = "auto"``.
        num_workers: DataLoader workers on the streaming path.
        eval_batch_size: meshes per batch during validation and evaluation.
        patience: early stopping: stop when the validation error has not improved for this
            many epochs (``epochs`` stays the cap); 0 trains all ``epochs``.
        min_delta: a validation error counts as an improvement for ``patience`` only when
            it is below ``best * (1 - min_delta)`` (relative; 0: any decrease).
    """

    epochs: int = option(300, "epochs", minimum=1)
    batch_size: int = option(32, "meshes per step and process", minimum=1)
    seed: int = option(0, "seed of initialisation, split and shuffles")
    device: str = option("auto", "device", choices=DEVICES)
    in_memory: str = option("auto", "hold the train split in memory", choices=IN_MEMORY)
    memory_limit_mb: int = option(2048, "largest train split held in memory (MB)", minimum=0)
    num_workers: int = option(0, "DataLoader workers when streaming", minimum=0, flag="--workers")
    eval_batch_size: int = option(64, "meshes per batch when evaluating", minimum=1)
    patience: int = option(
        0,
        "stop when the validation error has not improved for this many epochs (0: off)",
        minimum=0,
    )
    min_delta: float = option(
        0.0, "relative validation improvement that resets --patience (0: any decrease)"
    )

    def __post_init__(self):
        schema.check_fields(self)
        if not 0.0 <= self.min_delta < 1.0:
            raise ConfigError(f"min_delta must be in [0, 1), got {self.min_delta}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (one section per concern)."""

    data: DataConfig = field(default_factory=DataConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some options changed: ``config.replace(train={"epochs": 4})``.

        ``model={"preset": NAME, ...}`` starts the model from that preset, and the hierarchy
        from the one it was published with (``deep3dmm.nn.PRESET_HIERARCHY``) unless
        ``hierarchy`` options are given or the current ones are not the defaults.
        """
        changed = {}
        for name, values in sections.items():
            if name not in SECTIONS:
                raise ConfigError(f"unknown config section {name!r}; expected one of {SECTIONS}")
            changed[name] = _section_from_dict(name, values, base=getattr(self, name))
        preset = (sections.get("model") or {}).get("preset")
        if preset and "hierarchy" not in sections and self.hierarchy == HierarchyConfig():
            changed["hierarchy"] = _preset_hierarchy(preset)
        return dataclasses.replace(self, **changed)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict (``None`` options left out, tuples as lists)."""
        return {
            name: self.model.to_dict() if name == "model" else schema.to_dict(getattr(self, name))
            for name in SECTIONS
        }

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], *, path: str | os.PathLike | None = None
    ) -> RunConfig:
        """Build from a nested dict (as read from TOML); unknown keys are errors."""
        unknown = sorted(set(values) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"unknown config section(s) {', '.join(unknown)}; expected {', '.join(SECTIONS)}",
                path=path,
            )
        try:
            config = cls(
                **{
                    name: _section_from_dict(name, values.get(name, {}), path=path)
                    for name in SECTIONS
                }
            )
            preset = (values.get("model") or {}).get("preset")
            if preset and "hierarchy" not in values:  # the preset's published hierarchy
                config = dataclasses.replace(config, hierarchy=_preset_hierarchy(preset))
            return config
        except ConfigError as exc:
            if exc.path is None and path is not None:
                raise ConfigError(exc.message, path=path, fix=exc.fix) from exc
            raise


SECTIONS = tuple(f.name for f in fields(RunConfig))
SECTION_TYPES = {
    "data": DataConfig,
    "hierarchy": HierarchyConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


def _preset_hierarchy(preset: str) -> HierarchyConfig:
    from deep3dmm.nn.presets import PRESET_HIERARCHY

    return PRESET_HIERARCHY.get(preset, HierarchyConfig())


def _section_from_dict(
    name: str, values: dict[str, Any], *, base: Any = None, path: str | os.PathLike | None = None
) -> Any:
    if name == "model" and isinstance(values, dict):
        return ModelConfig.from_dict(values, base=base, path=path)
    return schema.from_dict(SECTION_TYPES[name], values, section=name, base=base, path=path)


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The tables of a TOML file (a run's ``config.toml``, mesh or image-graph).

    Raises:
        ConfigError: the file is missing or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="check the path")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", path=path) from exc


def write_toml(path: str | os.PathLike, tables: dict[str, Any], *, header: str) -> None:
    """Write ``tables`` as TOML after the comment ``header``, atomically."""
    atomic_write_text(path, f"# {header}\n\n" + tomli_w.dumps(tables))


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a :class:`RunConfig` from a TOML file (missing options take their defaults).

    Raises:
        ConfigError: the file is missing, is not valid TOML, or holds unknown or mistyped options.
    """
    return RunConfig.from_dict(read_toml(path), path=path)


def config_to_toml(config: RunConfig) -> str:
    """The TOML text of a configuration (round-trips through :func:`load_config`)."""
    return f"# {CONFIG_HEADER}\n\n" + tomli_w.dumps(config.to_dict())


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Write ``config`` to a TOML file atomically."""
    write_toml(path, config.to_dict(), header=CONFIG_HEADER)
