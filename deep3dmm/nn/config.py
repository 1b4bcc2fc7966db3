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
    "MODEL_KINDS",
    "ModelConfig",
    "NORMALIZATIONS",
    "POOLS",
    "TOPK_SEARCHES",
    "AUTO_EXACT_SCORES",
    "APPROXIMATE_SEARCH_EVERY",
]

#: ``autoencoder``: :class:`~deep3dmm.nn.MeshAutoencoder`; ``pca``: the linear 3DMM
#: :class:`~deep3dmm.nn.PCAModel`, fitted in closed form (only ``latent`` applies).
MODEL_KINDS = ("autoencoder", "pca")
CONVS = ("spiral", "cheb")
POOLS = ("fixed", "attention")
ACTIVATIONS = ("elu", "relu", "leaky_relu", "gelu", "tanh", "identity")
ATTENTION_MODES = ("fused", "learned", "prior")
NORMALIZATIONS = ("l1", "softmax")
#: How the attention head finds each row's top-k (see ``AttentionPool``): dense and exact,
#: clustered and approximate, or by level size.
TOPK_SEARCHES = ("auto", "exact", "approximate")
#: ``topk_search="auto"`` uses the exact dense search up to this many scores (V_out * V_in)
#: per level and the clustered approximate search above (a 20k -> 5k level has 1e8).
AUTO_EXACT_SCORES = 50_000_000
#: The approximate search runs its clustered search on every this many steps; the steps
#: between rescore each row's ``1.5 k`` best columns of the last search (docs/benchmarks.md).
APPROXIMATE_SEARCH_EVERY = 16

option = schema.option


def _option(default, help, **kwargs):
    """An option of the autoencoder kind only (``kinds`` says which model kinds it applies to)."""
    return option(default, help, kinds=kwargs.pop("kinds", ("autoencoder",)), **kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """A mesh autoencoder: convolution, pooling, sizes and the attention options.

    The defaults are the ``deep3dmm-spiral`` preset (SpiralNet++ backbone with Deep3DMM
    attention pooling); :meth:`from_preset` starts from another published configuration.

    Args:
        kind: ``"autoencoder"`` or ``"pca"`` (the linear 3DMM; only ``latent`` applies, the
            other options must keep their defaults).
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
        topk_search: ``"exact"`` (dense scores), ``"approximate"`` (clustered keys, recall
            measured in docs/benchmarks.md) or ``"auto"`` (the default: exact up to
            :data:`AUTO_EXACT_SCORES` scores per level, approximate above).
        in_channels: per-vertex input channels (3 for positions).
        variational: a variational autoencoder (VAE): the encoder outputs a mean and a
            log-variance (one more linear head), training decodes the reparameterised code
            and adds ``beta * KL`` (``deep3dmm.nn.variational``); evaluation uses the mean.
        beta: weight of the KL term (``variational``), against the L1 loss per coordinate.
        kl_warmup: epochs over which the KL weight rises linearly from ``beta / kl_warmup``
            to ``beta`` (``variational``; 0: ``beta`` from the first epoch).
    """

    kind: str = option("autoencoder", "model kind (pca: the linear 3DMM)", choices=MODEL_KINDS,
                       kinds=MODEL_KINDS)  # fmt: skip
    conv: str = _option("spiral", "convolution", choices=CONVS)
    pool: str = _option("attention", "pooling", choices=POOLS)
    latent: int = option(16, "latent code size", minimum=1, kinds=MODEL_KINDS)
    channels: tuple[int, ...] = _option(
        (32, 32, 32, 64), "encoder channels per level", minimum=1, metavar="C"
    )
    activation: str = _option("elu", "activation", choices=ACTIVATIONS)
    down_att: bool = _option(True, "learned attention on the down mappings (pool=attention)")
    up_att: bool = _option(True, "learned attention on the up mappings (pool=attention)")
    top_k: tuple[int, ...] = _option(
        (8, 32), "attention non-zeros per row: down up", minimum=1, metavar="K"
    )
    K: int = _option(6, "Chebyshev order (conv=cheb)", minimum=1)
    attention_dim: int = _option(21, "attention key/query size d", minimum=1)
    prior_weight: float = _option(0.8, "initial weight of the fixed mapping in the fusion")
    attention_mode: str = _option("fused", "attention mapping (ablations)", choices=ATTENTION_MODES)
    attention_normalize: str = _option("l1", "attention row normalisation", choices=NORMALIZATIONS)
    topk_search: str = _option(
        "auto", "attention top-k search (exact: dense scores; approximate: clustered keys; "
        "auto: exact up to 5e7 scores per level, approximate above)", choices=TOPK_SEARCHES,
    )  # fmt: skip
    in_channels: int = _option(3, "per-vertex input channels", minimum=1)
    variational: bool = _option(
        False, "variational autoencoder: mean + log-variance heads, loss + beta * KL"
    )
    beta: float = _option(1e-3, "KL weight of a variational model", minimum=0.0)
    kl_warmup: int = _option(0, "epochs of linear KL warm-up (variational)", minimum=0)

    def __post_init__(self):
        schema.check_fields(self)
        if len(self.top_k) != 2:
            raise ConfigError(f"top_k must be (down, up), got {self.top_k}")
        default = ModelConfig.__dataclass_fields__
        _check_applies(
            self.kind, [f for f in self.option_names() if getattr(self, f) != default[f].default]
        )
        vae_only = [n for n in _VAE_ONLY if getattr(self, n) != default[n].default]
        if vae_only and not self.variational:
            raise ConfigError(
                f"{' and '.join(vae_only)} {'apply' if len(vae_only) > 1 else 'applies'} to a "
                "variational model only",
                fix="add --variational, or drop them",
            )

    def applicable(self) -> tuple[str, ...]:
        """The options that apply to this model kind."""
        return _applicable(self.kind)

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """The published configuration ``name`` (see ``deep3dmm.nn.PRESETS``), overridden.

        Raises:
            ConfigError: unknown preset name or option.
        """
        from deep3dmm.nn.presets import ALL_PRESETS

        if name not in ALL_PRESETS:
            raise ConfigError(
                f"unknown model preset {name!r}", fix=f"choose one of {', '.join(ALL_PRESETS)}"
            )
        return ALL_PRESETS[name].replace(**overrides)

    @property
    def preset(self) -> str:
        """The preset these options equal up to the latent size and the VAE options, or ``""``."""
        from deep3dmm.nn.presets import ALL_PRESETS

        same = dataclasses.replace(self, latent=1, **_NOT_VAE)
        return next(
            (name for name, c in ALL_PRESETS.items() if dataclasses.replace(c, latent=1) == same),
            "",
        )

    # ------------------------------------------------------------------ conversion
    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` (checked; unknown or inapplicable options are errors)."""
        if not changes:
            return self
        _check_applies(changes.get("kind", self.kind), [k for k in changes if k in _FIELDS])
        return schema.replace(self, "model", **changes)

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
        kind = values.get("kind", (base or cls()).kind)
        try:
            _check_applies(kind, [k for k in values if k in _FIELDS])
        except ConfigError as exc:
            raise ConfigError(exc.message, path=path, fix=exc.fix) from None
        return schema.from_dict(cls, values, section="model", base=base, path=path)

    def to_dict(self) -> dict[str, Any]:
        """Every option that applies to the kind, as plain values (tuples as lists)."""
        values = schema.to_dict(self)
        return {k: v for k, v in values.items() if k in self.applicable()}

    @staticmethod
    def option_names() -> tuple[str, ...]:
        """The names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(ModelConfig))


_FIELDS = ModelConfig.__dataclass_fields__
#: Options that mean something only with ``variational = true``.
_VAE_ONLY = ("beta", "kl_warmup")
#: A variational model of a preset is still that preset (``preset`` ignores these).
_NOT_VAE = {n: _FIELDS[n].default for n in ("variational", *_VAE_ONLY)}


def _applicable(kind: str) -> tuple[str, ...]:
    return tuple(n for n, f in _FIELDS.items() if kind in f.metadata.get("kinds", ()))


def _check_applies(kind: str, names) -> None:
    """Refuse options that do not apply to ``kind`` (``pca`` takes only ``latent``)."""
    extra = [n for n in names if n not in _applicable(kind)]
    if extra and kind in MODEL_KINDS:
        raise ConfigError(
            f"model option(s) {', '.join(extra)} do not apply to preset {kind!r} "
            f"(model kind {kind}: only {', '.join(_applicable(kind))} apply)",
            fix=f"remove them (they do not apply to the {kind} preset), or choose a deep preset",
        )
