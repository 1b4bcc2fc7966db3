"""Run configuration: one frozen dataclass per concern, read from and written to TOML.

A run is fully described by a :class:`RunConfig`::

    [data]       which prepared dataset and how it is split
    [hierarchy]  decimation factors and spiral parameters of the mesh hierarchy
    [model]      the autoencoder (a preset name and/or explicit build options)
    [optim]      optimiser, learning rate and its per-epoch exponential decay
    [train]      epochs, batch size, seed, device, data loading

``RUN/config.toml`` holds the resolved configuration (every model option
spelled out), so a run can be rebuilt from its folder alone.
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

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import ConfigError

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
]

PROTOCOLS = ("interpolation", "extrapolation", "identity", "random", "predefined")
OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")


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

    path: str = ""
    protocol: str = "interpolation"
    holdout: str = ""
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self):
        _check_choice("data.protocol", self.protocol, PROTOCOLS)
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class HierarchyConfig:
    """Mesh hierarchy parameters (see ``MeshHierarchy.build``).

    Args:
        factors: decimation factor per level (COMA: 4, 4, 4, 4).
        spiral_length: spiral length L (SpiralNet++: 9).
        spiral_dilation: spiral dilation.
    """

    factors: tuple[int, ...] = (4, 4, 4, 4)
    spiral_length: int = 9
    spiral_dilation: int = 1

    def __post_init__(self):
        object.__setattr__(self, "factors", tuple(int(f) for f in self.factors))
        if not self.factors or any(f < 1 for f in self.factors):
            raise ConfigError(f"hierarchy.factors must be positive integers, got {self.factors}")
        if self.spiral_length < 1 or self.spiral_dilation < 1:
            raise ConfigError("hierarchy.spiral_length and spiral_dilation must be >= 1")


# Model build options; ``None`` means "the preset's value, or the builder's default".
MODEL_OPTIONS = (
    "conv",
    "pool",
    "latent",
    "channels",
    "activation",
    "down_att",
    "up_att",
    "top_k",
    "K",
    "attention_dim",
    "prior_weight",
    "attention_mode",
    "attention_normalize",
)


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder: a preset and/or explicit ``MeshAutoencoder.build`` options.

    Options left as ``None`` come from the preset (when one is named) or from the
    builder's defaults; explicit options override the preset.

    Args:
        preset: a name of ``deep3dmm.nn.PRESETS`` ("coma", "neural3dmm", "spiralnet++",
            "deep3dmm-spectral", "deep3dmm-spiral"; the default), "pca" (the linear 3DMM,
            fitted in closed form; only ``latent`` applies) or empty (the options alone,
            with ``MeshAutoencoder.build``'s defaults).
        conv: "spiral" or "cheb".
        pool: "fixed" or "attention".
        latent: latent code size.
        channels: encoder channels per level.
        activation: activation name ("elu", ...).
        down_att: learned attention on the down (pooling) mappings.
        up_att: learned attention on the up (unpooling) mappings.
        top_k: attention top-k for (down, up).
        K: Chebyshev order.
        attention_dim: attention key/query dimension d.
        prior_weight: initial weight of the fixed mapping in the fusion.
        attention_mode: "fused" (paper), "learned" (no prior) or "prior" (ablations).
        attention_normalize: "l1" (paper) or "softmax".
    """

    preset: str = "deep3dmm-spiral"
    conv: str | None = None
    pool: str | None = None
    latent: int | None = None
    channels: tuple[int, ...] | None = None
    activation: str | None = None
    down_att: bool | None = None
    up_att: bool | None = None
    top_k: tuple[int, int] | None = None
    K: int | None = None
    attention_dim: int | None = None
    prior_weight: float | None = None
    attention_mode: str | None = None
    attention_normalize: str | None = None

    def __post_init__(self):
        for name in ("channels", "top_k"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))
        if self.conv is not None and self.conv not in ("spiral", "cheb"):
            raise ConfigError(f"model.conv must be 'spiral' or 'cheb', got {self.conv!r}")
        if self.pool is not None and self.pool not in ("fixed", "attention"):
            raise ConfigError(f"model.pool must be 'fixed' or 'attention', got {self.pool!r}")
        if self.latent is not None and self.latent < 1:
            raise ConfigError(f"model.latent must be >= 1, got {self.latent}")
        if self.preset == "pca":
            extra = [k for k in self.build_kwargs() if k != "latent"]
            if extra:
                raise ConfigError(
                    f"model option(s) {', '.join(extra)} do not apply to preset 'pca' "
                    "(the linear 3DMM has only a latent size)",
                    fix="remove them, or choose a deep preset",
                )

    def build_kwargs(self) -> dict[str, Any]:
        """The explicit (non-``None``) build options."""
        return {
            name: getattr(self, name) for name in MODEL_OPTIONS if getattr(self, name) is not None
        }


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

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay: float = 0.99

    def __post_init__(self):
        _check_choice("optim.optimizer", self.optimizer, OPTIMIZERS)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"optim.lr must be a positive number, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"optim.lr_decay must be in (0, 1], got {self.lr_decay}")


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

    epochs: int = 300
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    in_memory: str = "auto"
    memory_limit_mb: int = 2048
    num_workers: int = 0
    eval_batch_size: int = 64
    patience: int = 0
    min_delta: float = 0.0

    def __post_init__(self):
        if self.patience < 0 or not 0.0 <= self.min_delta < 1.0:
            raise ConfigError(
                f"train.patience must be >= 0 and train.min_delta in [0, 1), got "
                f"{self.patience} and {self.min_delta}"
            )
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("train.batch_size and train.eval_batch_size must be >= 1")
        _check_choice("train.device", self.device, DEVICES)
        if self.in_memory not in ("auto", "yes", "no"):
            raise ConfigError(f"train.in_memory must be auto, yes or no, got {self.in_memory!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (one section per concern)."""

    data: DataConfig = field(default_factory=DataConfig)
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some options changed: ``config.replace(train={"epochs": 4})``."""
        changed = {}
        for name, values in sections.items():
            if name not in SECTIONS:
                raise ConfigError(f"unknown config section {name!r}; expected one of {SECTIONS}")
            changed[name] = _section_from_dict(name, values, base=getattr(self, name))
        return dataclasses.replace(self, **changed)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict (``None`` options left out, tuples as lists)."""
        out: dict[str, dict[str, Any]] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {
                f.name: list(v) if isinstance(v, tuple) else v
                for f in fields(section)
                if (v := getattr(section, f.name)) is not None
            }
        return out

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
            return cls(
                **{
                    name: _section_from_dict(name, values.get(name, {}), path=path)
                    for name in SECTIONS
                }
            )
        except ConfigError as exc:
            if exc.path is None and path is not None:
                raise ConfigError(exc.message, path=path, fix=exc.fix) from exc
            raise


SECTIONS = ("data", "hierarchy", "model", "optim", "train")
SECTION_TYPES = {
    "data": DataConfig,
    "hierarchy": HierarchyConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


def _section_from_dict(
    name: str, values: dict[str, Any], *, base: Any = None, path: str | os.PathLike | None = None
) -> Any:
    kind = SECTION_TYPES[name]
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table, got {type(values).__name__}", path=path)
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} in [{name}]; "
            f"known options: {', '.join(known)}",
            path=path,
        )
    checked = {}
    for key, value in values.items():
        checked[key] = _check_type(name, key, value, known[key].type, path)
    base = kind() if base is None else base
    try:
        return dataclasses.replace(base, **checked)
    except TypeError as exc:  # pragma: no cover - guarded by the checks above
        raise ConfigError(f"[{name}]: {exc}", path=path) from exc


def _check_type(section: str, key: str, value: Any, annotation: str, path) -> Any:
    """Check one TOML value against the dataclass annotation (a string, postponed)."""
    if value is None:
        return None
    text = str(annotation)
    where = f"{section}.{key}"
    if text.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where} must be a list of integers, got {value!r}", path=path)
        return tuple(value)
    if text.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}", path=path)
        return value
    if text.startswith("int"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}", path=path)
        return value
    if text.startswith("float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}", path=path)
        return float(value)
    if text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}", path=path)
        return value
    return value  # pragma: no cover


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a :class:`RunConfig` from a TOML file (missing options take their defaults).

    Raises:
        ConfigError: the file is missing, is not valid TOML, or holds unknown or mistyped options.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="check the path")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", path=path) from exc
    return RunConfig.from_dict(values, path=path)


def config_to_toml(config: RunConfig) -> str:
    """The TOML text of a configuration (round-trips through :func:`load_config`)."""
    lines = ["# deep3dmm run configuration (deep3dmm train --config FILE)"]
    for name, section in config.to_dict().items():
        lines.append("")
        lines.append(f"[{name}]")
        for key, value in section.items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")  # pragma: no cover


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Write ``config`` to a TOML file atomically."""
    atomic_write_text(path, config_to_toml(config))
