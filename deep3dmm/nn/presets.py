"""Published model configurations as :meth:`MeshAutoencoder.build` keyword arguments.

- ``coma``: COMA (Ranjan et al., ECCV 2018): Chebyshev K=6, channels 16,16,16,32, latent 8,
  fixed D/U pooling, ReLU.
- ``neural3dmm`` / ``spiralnet++``: Neural3DMM (Bouritsas et al., ICCV 2019) and SpiralNet++
  (Gong et al., ICCVW 2019): spiral convolutions (build the hierarchy with
  ``spiral_length=9``), channels 32,32,32,64, latent 16, fixed pooling, ELU.
- ``deep3dmm-spectral`` / ``deep3dmm-spiral``: Deep3DMM (Chen & Kim, CVPR 2021): the same two
  backbones with learned attention pooling down and up, top-k 8 / 32, d = 21, prior weight 0.8.
- ``pca``: the linear 3DMM (:class:`~deep3dmm.nn.pca.PCAModel`), fitted in closed form by
  the trainer; its only option is ``latent``.
"""

from __future__ import annotations

from deep3dmm.errors import ConfigError
from deep3dmm.nn.autoencoder import MeshAutoencoder
from deep3dmm.nn.pca import PCAModel

__all__ = ["PCA_PRESET", "PRESETS", "PRESET_HIERARCHY", "PRESET_NAMES", "build_preset",
           "model_from_config"]  # fmt: skip

_COMA = dict(conv="cheb", K=6, pool="fixed", channels=(16, 16, 16, 32), latent=8)
_SPIRAL = dict(conv="spiral", pool="fixed", channels=(32, 32, 32, 64), latent=16)
_ATTENTION = dict(
    pool="attention", down_att=True, up_att=True, top_k=(8, 32), attention_dim=21,
    prior_weight=0.8,
)  # fmt: skip

PRESETS: dict[str, dict] = {
    "coma": {**_COMA, "activation": "relu"},
    "neural3dmm": {**_SPIRAL, "activation": "elu"},
    "spiralnet++": {**_SPIRAL, "activation": "elu"},
    "deep3dmm-spectral": {**_COMA, **_ATTENTION, "activation": "elu"},
    "deep3dmm-spiral": {**_SPIRAL, **_ATTENTION, "activation": "elu"},
}

#: Hierarchy parameters each preset was published with (``MeshHierarchy.build`` kwargs).
PRESET_HIERARCHY: dict[str, dict] = {
    "coma": dict(factors=(4, 4, 4, 4)),
    "neural3dmm": dict(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
    "spiralnet++": dict(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
    "deep3dmm-spectral": dict(factors=(4, 4, 4, 4)),
    "deep3dmm-spiral": dict(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
}


#: The linear 3DMM: a model kind of its own (no convolution, pooling or optimiser).
PCA_PRESET = "pca"
PRESET_NAMES = (*PRESETS, PCA_PRESET)


def build_preset(name: str, hierarchy, **overrides) -> MeshAutoencoder | PCAModel:
    """Build the preset ``name`` on ``hierarchy``, with ``overrides`` replacing its options.

    ``pca`` builds an empty :class:`PCAModel` (only ``latent``, default 16, applies); the
    trainer fits it.

    Raises:
        ConfigError: unknown preset name or option.
    """
    if name == PCA_PRESET:
        unknown = sorted(set(overrides) - {"latent"})
        if unknown:
            raise ConfigError(f"options {unknown} do not apply to the pca preset",
                              fix="pca takes only latent")  # fmt: skip
        return PCAModel(hierarchy.num_vertices[0], overrides.get("latent", 16))
    if name not in PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}", fix=f"choose one of {sorted(PRESET_NAMES)}"
        )
    return MeshAutoencoder(hierarchy, **{**PRESETS[name], **overrides})


def model_from_config(config: dict, hierarchy) -> MeshAutoencoder | PCAModel:
    """Rebuild a model from its stored ``config`` (``kind = "pca"`` or an autoencoder)."""
    if config.get("kind") == "pca":
        return PCAModel.from_config(config)
    return MeshAutoencoder.from_config(config, hierarchy)
