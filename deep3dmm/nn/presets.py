"""Published model configurations as :meth:`MeshAutoencoder.build` keyword arguments.

- ``coma``: COMA (Ranjan et al., ECCV 2018): Chebyshev K=6, channels 16,16,16,32, latent 8,
  fixed D/U pooling, ReLU.
- ``neural3dmm`` / ``spiralnet++``: Neural3DMM (Bouritsas et al., ICCV 2019) and SpiralNet++
  (Gong et al., ICCVW 2019): spiral convolutions (build the hierarchy with
  ``spiral_length=9``), channels 32,32,32,64, latent 16, fixed pooling, ELU.
- ``deep3dmm-spectral`` / ``deep3dmm-spiral``: Deep3DMM (Chen & Kim, CVPR 2021): the same two
  backbones with learned attention pooling down and up, top-k 8 / 32, d = 21, prior weight 0.8.
"""

from __future__ import annotations

from deep3dmm.errors import ConfigError
from deep3dmm.nn.autoencoder import MeshAutoencoder

__all__ = ["PRESETS", "PRESET_HIERARCHY", "build_preset"]

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


def build_preset(name: str, hierarchy, **overrides) -> MeshAutoencoder:
    """Build the preset ``name`` on ``hierarchy``, with ``overrides`` replacing its options.

    Raises:
        ConfigError: unknown preset name or option.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}", fix=f"choose one of {sorted(PRESETS)}")
    return MeshAutoencoder(hierarchy, **{**PRESETS[name], **overrides})
