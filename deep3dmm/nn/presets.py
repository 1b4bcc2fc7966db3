"""Published model configurations as :class:`~deep3dmm.nn.ModelConfig` instances.

- ``coma``: COMA (Ranjan et al., ECCV 2018): Chebyshev K=6, channels 16,16,16,32, latent 8,
  fixed D/U pooling, ReLU.
- ``spiralnet++``: SpiralNet++ (Gong et al., ICCVW 2019): spiral convolutions of length 9
  (SpiralNet++ style: each spiral starts at its vertex's own first neighbour), channels
  32,32,32,64, latent 16, fixed pooling, ELU.
- ``neural3dmm``: Neural3DMM (Bouritsas et al., ICCV 2019): spiral convolutions whose spirals
  start from the direction of reference vertices (one per connected component; the
  published COMA runs used template vertices 3567, 4051, 4597; the preset draws one per
  component with the seed so it fits any template: ``--reference-vertices 3567 4051 4597``
  gives the published ones), two rings at the two finest levels and one ring below
  (``step_sizes`` 2, 2, 1, 1, 1: lengths 19, 19, 7, 7, 7 on a regular mesh; the published
  code pads shorter spirals, this one truncates), encoder channels 16,32,64,128, latent 16,
  fixed pooling, ELU. Its decoder mirrors the encoder (the published one has one more
  32-channel convolution).
- ``deep3dmm-spectral`` / ``deep3dmm-spiral``: Deep3DMM (Chen & Kim, CVPR 2021): the COMA /
  SpiralNet++ backbones with learned attention pooling down and up, top-k 8 / 32, d = 21,
  prior weight 0.8.
- ``pca``: the linear 3DMM (:class:`~deep3dmm.nn.PCAModel`), fitted in closed form by the
  trainer; its only option is ``latent``.

:data:`PRESET_HIERARCHY` holds the hierarchy each was published with; a run that names a
preset and no hierarchy options trains on it.
"""

from __future__ import annotations

from deep3dmm.mesh.config import HierarchyConfig
from deep3dmm.nn.config import ModelConfig

__all__ = [
    "ALL_PRESETS",
    "PCA_PRESET",
    "PRESETS",
    "PRESET_HIERARCHY",
    "PRESET_NAMES",
    "build_preset",
]

_SPIRAL = ModelConfig(conv="spiral", pool="fixed", channels=(32, 32, 32, 64), latent=16)
_COMA = ModelConfig(conv="cheb", K=6, pool="fixed", channels=(16, 16, 16, 32), latent=8)
_ATTENTION = dict(pool="attention", down_att=True, up_att=True, top_k=(8, 32),
                  attention_dim=21, prior_weight=0.8)  # fmt: skip

#: The linear 3DMM: a model kind of its own (no convolution, pooling or optimiser).
PCA_PRESET = "pca"

#: The published autoencoders.
PRESETS: dict[str, ModelConfig] = {
    "coma": _COMA.replace(activation="relu"),
    "neural3dmm": _SPIRAL.replace(channels=(16, 32, 64, 128), activation="elu"),
    "spiralnet++": _SPIRAL.replace(activation="elu"),
    "deep3dmm-spectral": _COMA.replace(activation="elu", **_ATTENTION),
    "deep3dmm-spiral": _SPIRAL.replace(activation="elu", **_ATTENTION),
}
#: Every preset by name: the autoencoders of :data:`PRESETS` and the linear 3DMM.
ALL_PRESETS: dict[str, ModelConfig] = {**PRESETS, PCA_PRESET: ModelConfig(kind="pca", latent=16)}
PRESET_NAMES = tuple(ALL_PRESETS)

_COMA_HIERARCHY = HierarchyConfig(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1)

#: The hierarchy each preset was published with.
PRESET_HIERARCHY: dict[str, HierarchyConfig] = {
    "coma": _COMA_HIERARCHY,
    "neural3dmm": HierarchyConfig(
        factors=(4, 4, 4, 4), spiral_length=(19, 19, 7, 7, 7), reference_vertices="random"
    ),
    "spiralnet++": _COMA_HIERARCHY,
    "deep3dmm-spectral": _COMA_HIERARCHY,
    "deep3dmm-spiral": _COMA_HIERARCHY,
    PCA_PRESET: _COMA_HIERARCHY,
}


def build_preset(name: str, hierarchy, **overrides):
    """The model of ``ModelConfig.from_preset(name, **overrides)`` on ``hierarchy``.

    Raises:
        ConfigError: unknown preset name or option.
    """
    from deep3dmm.nn.models import build_model

    return build_model(hierarchy, ModelConfig.from_preset(name, **overrides))
