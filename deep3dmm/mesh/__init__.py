"""Meshes: I/O, templates, procedural test shapes and topology summaries."""

from deep3dmm._lazy import lazy_exports

_EXPORTS = {
    "closest_point": "deep3dmm.mesh.closest_point",
    "HierarchyConfig": "deep3dmm.mesh.config",
    "down_matrix": "deep3dmm.mesh.decimation",
    "quadric_decimation": "deep3dmm.mesh.decimation",
    "MeshHierarchy": "deep3dmm.mesh.hierarchy",
    "default_cache_dir": "deep3dmm.mesh.hierarchy",
    "MeshInfo": "deep3dmm.mesh.info",
    "mesh_info": "deep3dmm.mesh.info",
    "MESH_SUFFIXES": "deep3dmm.mesh.io",
    "read_mesh": "deep3dmm.mesh.io",
    "write_mesh": "deep3dmm.mesh.io",
    "scaled_laplacian": "deep3dmm.mesh.laplacian",
    "ordered_one_ring": "deep3dmm.mesh.spirals",
    "spiral_indices": "deep3dmm.mesh.spirals",
    "UNITS": "deep3dmm.mesh.template",
    "Template": "deep3dmm.mesh.template",
    "guess_unit": "deep3dmm.mesh.template",
    "mesh_hash": "deep3dmm.mesh.template",
    "up_matrix": "deep3dmm.mesh.upsampling",
}

__all__ = [
    "HierarchyConfig",
    "MESH_SUFFIXES",
    "MeshHierarchy",
    "MeshInfo",
    "Template",
    "UNITS",
    "closest_point",
    "default_cache_dir",
    "down_matrix",
    "guess_unit",
    "mesh_hash",
    "mesh_info",
    "ordered_one_ring",
    "quadric_decimation",
    "read_mesh",
    "scaled_laplacian",
    "shapes",
    "spiral_indices",
    "up_matrix",
    "write_mesh",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
