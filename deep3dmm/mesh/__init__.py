"""Meshes: I/O, templates, procedural test shapes and topology summaries."""

from deep3dmm.mesh import shapes
from deep3dmm.mesh.info import MeshInfo, mesh_info
from deep3dmm.mesh.io import MESH_SUFFIXES, read_mesh, write_mesh
from deep3dmm.mesh.template import UNITS, Template, guess_unit, mesh_hash

__all__ = [
    "MESH_SUFFIXES",
    "MeshInfo",
    "Template",
    "UNITS",
    "guess_unit",
    "mesh_hash",
    "mesh_info",
    "read_mesh",
    "shapes",
    "write_mesh",
]
