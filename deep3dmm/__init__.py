"""deep3dmm: deep 3D morphable models over registered meshes."""

from deep3dmm._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "CheckpointError": "deep3dmm.errors",
    "ConfigError": "deep3dmm.errors",
    "DatasetError": "deep3dmm.errors",
    "Deep3DMMError": "deep3dmm.errors",
    "MeshFormatError": "deep3dmm.errors",
    "TopologyMismatchError": "deep3dmm.errors",
    "Template": "deep3dmm.mesh",
    "read_mesh": "deep3dmm.mesh",
    "write_mesh": "deep3dmm.mesh",
    "MeshAutoencoder": "deep3dmm.nn",
}

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

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
