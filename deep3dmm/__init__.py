"""deep3dmm: deep 3D morphable models over registered meshes."""

from deep3dmm.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    Deep3DMMError,
    MeshFormatError,
    TopologyMismatchError,
)
from deep3dmm.mesh import Template, read_mesh, write_mesh
from deep3dmm.nn import MeshAutoencoder

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "Deep3DMMError",
    "MeshAutoencoder",
    "MeshFormatError",
    "Template",
    "TopologyMismatchError",
    "__version__",
    "read_mesh",
    "write_mesh",
]
