"""Meshes: I/O, templates, procedural test shapes and topology summaries."""

from deep3dmm.mesh import shapes
from deep3dmm.mesh.config import HierarchyConfig
from deep3dmm.mesh.decimation import down_matrix, quadric_decimation
from deep3dmm.mesh.hierarchy import MeshHierarchy, default_cache_dir
from deep3dmm.mesh.hierarchy_benchmark import benchmark_hierarchy
from deep3dmm.mesh.info import MeshInfo, mesh_info
from deep3dmm.mesh.io import MESH_SUFFIXES, read_mesh, write_mesh
from deep3dmm.mesh.laplacian import scaled_laplacian
from deep3dmm.mesh.spirals import ordered_one_ring, spiral_indices
from deep3dmm.mesh.template import UNITS, Template, guess_unit, mesh_hash
from deep3dmm.mesh.upsampling import up_matrix

__all__ = [
    "HierarchyConfig",
    "MESH_SUFFIXES",
    "MeshHierarchy",
    "MeshInfo",
    "Template",
    "UNITS",
    "benchmark_hierarchy",
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
