"""Neural network layers and the mesh autoencoder.

Spiral (SpiralNet++) and Chebyshev (COMA) convolutions, fixed (D/U) and learned attention
(Deep3DMM) pooling, and :class:`MeshAutoencoder` with the published presets.
"""

import warnings

from deep3dmm.nn.allocator import reuse_freed_memory
from deep3dmm.nn.attention_pool import AttentionPool
from deep3dmm.nn.autoencoder import ACTIVATIONS, CONVS, POOLS, MeshAutoencoder
from deep3dmm.nn.cheb_conv import ChebConv
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.presets import PRESET_HIERARCHY, PRESETS, build_preset
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
    "POOLS",
    "PRESETS",
    "PRESET_HIERARCHY",
    "SpiralConv",
    "build_preset",
    "reuse_freed_memory",
]
