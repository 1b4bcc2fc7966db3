"""Published model configurations as :class:`~deep3dmm.nn.ModelConfig` instances.

- ``coma``: COMA (Ranjan et al., ECCV 2018): Chebyshev K=6, channels 16,16,16,32, latent 8,
  fixed D/U pooling, ReLU.
- ``neural3dmm`` / ``spiralnet++``: Neural3DMM (Bouritsas et al., ICCV 2019) and SpiralNet++
  (Gong et al., ICCVW 2019): spiral convolutions (build the hierarchy with
  ``spiral_length=9``), channels 32,32,32,64, latent 16, fixed pooling, ELU.
- ``deep3dmm-spectral`` / ``deep3dmm-spiral``: Deep3DMM (Chen & Kim, CVPR 2021): the same two
  backbones with learned attention pooling down and up, top-k 8 / 32, d = 21, prior weight 0.8.
"""

from __future__ import annotations

from deep3dmm.mesh.config import HierarchyConfig
from deep3dmm.nn.config import ModelConfig

__all__ = ["PRESETS", "PRESET_HIERARCHY", "build_preset"]

_SPIRAL = ModelConfig(conv="spiral", pool="fixed", channels=(32, 32, 32, 64), latent=16)
_COMA = ModelConfig(conv="cheb", K=6, pool="fixed", channels=(16, 16, 16, 32), latent=8)
_ATTENTION = dict(pool="attention", down_att=True, up_att=True, top_k=(8, 32),
                  attention_dim=21, prior_weight=0.8)  # fmt: skip

PRESETS: dict[str, ModelConfig] = {
    "coma": _COMA.replace(activation="relu"),
    "neural3dmm": _SPIRAL.replace(activation="elu"),
    "spiralnet++": _SPIRAL.replace(activation="elu"),
    "deep3dmm-spectral": _COMA.replace(activation="elu", **_ATTENTION),
    "deep3dmm-spiral": _SPIRAL.replace(activation="elu", **_ATTENTION),
}

#: The hierarchy each preset was published with.
PRESET_HIERARCHY: dict[str, HierarchyConfig] = {
    "coma": HierarchyConfig(factors=(4, 4, 4, 4)),
    "neural3dmm": HierarchyConfig(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
    "spiralnet++": HierarchyConfig(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
    "deep3dmm-spectral": HierarchyConfig(factors=(4, 4, 4, 4)),
    "deep3dmm-spiral": HierarchyConfig(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),
}


def build_preset(name: str, hierarchy, **overrides):
    """``MeshAutoencoder(hierarchy, ModelConfig.from_preset(name, **overrides))``.

    Raises:
        ConfigError: unknown preset name or option.
    """
    from deep3dmm.nn.autoencoder import MeshAutoencoder

    return MeshAutoencoder(hierarchy, ModelConfig.from_preset(name, **overrides))
