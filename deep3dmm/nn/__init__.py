"""Neural network layers and the mesh autoencoder.

Spiral (SpiralNet++) and Chebyshev (COMA) convolutions, fixed (D/U) and learned attention
(Deep3DMM) pooling, :class:`MeshAutoencoder`, its schema :class:`ModelConfig` and the
published presets.
"""

from deep3dmm._lazy import lazy_exports

_EXPORTS = {
    "reuse_freed_memory": "deep3dmm.nn.allocator",
    "AttentionPool": "deep3dmm.nn.attention_pool",
    "MeshAutoencoder": "deep3dmm.nn.autoencoder",
    "ChebConv": "deep3dmm.nn.cheb_conv",
    "ACTIVATIONS": "deep3dmm.nn.config",
    "ATTENTION_MODES": "deep3dmm.nn.config",
    "CONVS": "deep3dmm.nn.config",
    "MODEL_KINDS": "deep3dmm.nn.config",
    "NORMALIZATIONS": "deep3dmm.nn.config",
    "POOLS": "deep3dmm.nn.config",
    "ModelConfig": "deep3dmm.nn.config",
    "FixedPool": "deep3dmm.nn.fixed_pool",
    "build_model": "deep3dmm.nn.models",
    "model_from_config": "deep3dmm.nn.models",
    "PCAModel": "deep3dmm.nn.pca",
    "fit_pca": "deep3dmm.nn.pca_fit",
    "PCA_PRESET": "deep3dmm.nn.presets",
    "PRESET_HIERARCHY": "deep3dmm.nn.presets",
    "PRESET_NAMES": "deep3dmm.nn.presets",
    "PRESETS": "deep3dmm.nn.presets",
    "build_preset": "deep3dmm.nn.presets",
    "SpiralConv": "deep3dmm.nn.spiral_conv",
    "gaussian_kl": "deep3dmm.nn.variational",
    "kl_weight": "deep3dmm.nn.variational",
    "reparameterize": "deep3dmm.nn.variational",
}

__all__ = [
    "ACTIVATIONS",
    "ATTENTION_MODES",
    "AttentionPool",
    "CONVS",
    "ChebConv",
    "FixedPool",
    "MODEL_KINDS",
    "MeshAutoencoder",
    "ModelConfig",
    "NORMALIZATIONS",
    "PCA_PRESET",
    "PCAModel",
    "POOLS",
    "PRESETS",
    "PRESET_HIERARCHY",
    "PRESET_NAMES",
    "SpiralConv",
    "build_model",
    "build_preset",
    "fit_pca",
    "gaussian_kl",
    "kl_weight",
    "model_from_config",
    "reparameterize",
    "reuse_freed_memory",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
