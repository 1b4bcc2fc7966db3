"""The model schema: every option of :class:`~deep3dmm.nn.MeshAutoencoder` in one place.

:class:`ModelConfig` is the one declaration of a model option (its default, its check, its
help line). :class:`~deep3dmm.nn.MeshAutoencoder` takes it, the presets are instances of
it, ``RunConfig.model`` embeds it and ``deep3dmm train`` generates its flags from it: a
new field is a new option everywhere. The lists of kinds (convolutions, poolings,
activations, attention modes and normalisations) live here too; this module imports no
torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from deep3dmm import schema
from deep3dmm.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "ATTENTION_MODES",
    "CONVS",
    "ModelConfig",
    "NORMALIZATIONS",
    "POOLS",
]

CONVS = ("spiral", "cheb")
POOLS = ("fixed", "attention")
ACTIVATIONS = ("elu", "relu", "leaky_relu", "gelu", "tanh", "identity")
ATTENTION_MODES = ("fused", "learned", "prior")
NORMALIZATIONS = ("l1", "softmax")

option = schema.option


@dataclass(frozen=True)
class ModelConfig:
    """A mesh autoencoder: convolution, pooling, sizes and the attention options.

    The defaults are the ``deep3dmm-spiral`` preset (SpiralNet++ backbone with Deep3DMM
    attention pooling); :meth:`from_preset` starts from another published configuration.

    Args:
        conv: ``"spiral"`` (SpiralNet++) or ``"cheb"`` (COMA).
        pool: ``"fixed"`` (D/U) or ``"attention"`` (Deep3DMM).
        latent: latent code size.
        channels: encoder channels per level, one per pooling step of the hierarchy.
        activation: activation after every convolution but the last.
        down_att: with ``pool="attention"``, learn the down mappings.
        up_att: with ``pool="attention"``, learn the up mappings.
        top_k: learned non-zeros per row, ``(down, up)``.
        K: Chebyshev terms (``conv="cheb"``).
        attention_dim: ``d``, the key/query size.
        prior_weight: initial weight of the fixed prior in the fused mapping.
        attention_mode: ``"fused"`` (paper) | ``"learned"`` (no prior) | ``"prior"``.
        attention_normalize: ``"l1"`` (paper) or ``"softmax"``.
        in_channels: per-vertex input channels (3 for positions).
    """

    conv: str = option("spiral", "convolution", choices=CONVS)
    pool: str = option("attention", "pooling", choices=POOLS)
    latent: int = option(16, "latent code size", minimum=1)
    channels: tuple[int, ...] = option(
        (32, 32, 32, 64), "encoder channels per level", minimum=1, metavar="C"
    )
    activation: str = option("elu", "activation", choices=ACTIVATIONS)
    down_att: bool = option(True, "learned attention on the down mappings (pool=attention)")
    up_att: bool = option(True, "learned attention on the up mappings (pool=attention)")
    top_k: tuple[int, ...] = option(
        (8, 32), "attention non-zeros per row: down up", minimum=1, metavar="K"
    )
    K: int = option(6, "Chebyshev order (conv=cheb)", minimum=1)
    attention_dim: int = option(21, "attention key/query size d", minimum=1)
    prior_weight: float = option(0.8, "initial weight of the fixed mapping in the fusion")
    attention_mode: str = option("fused", "attention mapping (ablations)", choices=ATTENTION_MODES)
    attention_normalize: str = option("l1", "attention row normalisation", choices=NORMALIZATIONS)
    in_channels: int = option(3, "per-vertex input channels", minimum=1)

    def __post_init__(self):
        schema.check_fields(self)
        if len(self.top_k) != 2:
            raise ConfigError(f"top_k must be (down, up), got {self.top_k}")

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """The published configuration ``name`` (see ``deep3dmm.nn.PRESETS``), overridden.

        Raises:
            ConfigError: unknown preset name or option.
        """
        from deep3dmm.nn.presets import PRESETS

        if name not in PRESETS:
            raise ConfigError(
                f"unknown model preset {name!r}", fix=f"choose one of {', '.join(PRESETS)}"
            )
        return PRESETS[name].replace(**overrides)

    @property
    def preset(self) -> str:
        """The name of the preset these options equal, or ``""``."""
        from deep3dmm.nn.presets import PRESETS

        return next((name for name, config in PRESETS.items() if config == self), "")

    # ------------------------------------------------------------------ conversion
    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` (checked; unknown options are errors)."""
        return schema.replace(self, "model", **changes) if changes else self

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], *, base: ModelConfig | None = None, path=None
    ) -> ModelConfig:
        """From a ``[model]`` table: ``preset = NAME`` (optional) plus options overriding it.

        Options absent from ``values`` keep their value in the preset, else in ``base``
        (default: the defaults).
        """
        values = dict(values)
        preset = values.pop("preset", None)
        if preset:
            try:
                base = cls.from_preset(preset)
            except ConfigError as exc:
                raise ConfigError(f"model.{exc.message}", path=path, fix=exc.fix) from None
        return schema.from_dict(cls, values, section="model", base=base, path=path)

    def to_dict(self) -> dict[str, Any]:
        """Every option as plain values (tuples as lists)."""
        return schema.to_dict(self)

    @staticmethod
    def option_names() -> tuple[str, ...]:
        """The names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(ModelConfig))
