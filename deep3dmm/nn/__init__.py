"""Neural network layers and the mesh autoencoder.

Spiral (SpiralNet++) and Chebyshev (COMA) convolutions, fixed (D/U) and learned attention
(Deep3DMM) pooling, :class:`MeshAutoencoder`, its schema :class:`ModelConfig` and the
published presets.
"""

from deep3dmm.nn.allocator import reuse_freed_memory
from deep3dmm.nn.attention_pool import AttentionPool
from deep3dmm.nn.autoencoder import MeshAutoencoder
from deep3dmm.nn.cheb_conv import ChebConv
from deep3dmm.nn.config import (
    ACTIVATIONS,
    ATTENTION_MODES,
    CONVS,
    MODEL_KINDS,
    NORMALIZATIONS,
    POOLS,
    ModelConfig,
)
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.models import build_model, model_from_config
from deep3dmm.nn.pca import PCAModel
from deep3dmm.nn.pca_fit import fit_pca
from deep3dmm.nn.presets import PCA_PRESET, PRESET_HIERARCHY, PRESET_NAMES, PRESETS, build_preset
from deep3dmm.nn.spiral_conv import SpiralConv

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
    "model_from_config",
    "reuse_freed_memory",
]
