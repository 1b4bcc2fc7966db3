"""Visualisation: off-screen PyVista rendering of meshes and error maps."""

from deep3dmm.viz.render import CAMERAS, mesh_to_polydata, render_meshes

__all__ = ["CAMERAS", "mesh_to_polydata", "render_meshes"]
