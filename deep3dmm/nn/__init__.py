"""Neural network layers and the mesh autoencoder.

Spiral (SpiralNet++) and Chebyshev (COMA) convolutions, fixed (D/U) and learned attention
(Deep3DMM) pooling, and :class:`MeshAutoencoder` with the published presets; the linear
3DMM :class:`PCAModel` (preset ``pca``).
"""

import warnings

from deep3dmm.nn.allocator import reuse_freed_memory
from deep3dmm.nn.attention_pool import AttentionPool
from deep3dmm.nn.autoencoder import ACTIVATIONS, CONVS, POOLS, MeshAutoencoder
from deep3dmm.nn.cheb_conv import ChebConv
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.pca import PCAModel
from deep3dmm.nn.pca_fit import fit_pca
from deep3dmm.nn.presets import (
    PCA_PRESET,
    PRESET_HIERARCHY,
    PRESET_NAMES,
    PRESETS,
    build_preset,
    model_from_config,
)
from deep3dmm.nn.spiral_conv import SpiralConv

# torch warns once per process that CSR tensors are "beta"; the layers rely on them on purpose
# (and tests compare every sparse product with a dense reference), so keep user logs clean.
warnings.filterwarnings(
    "ignore", message="Sparse CSR tensor support is in beta", category=UserWarning
)

__all__ = [
    "ACTIVATIONS",
    "AttentionPool",
    "CONVS",
    "ChebConv",
    "FixedPool",
    "MeshAutoencoder",
    "PCA_PRESET",
    "PCAModel",
    "POOLS",
    "PRESETS",
    "PRESET_HIERARCHY",
    "PRESET_NAMES",
    "SpiralConv",
    "build_preset",
    "fit_pca",
    "model_from_config",
    "reuse_freed_memory",
]
