"""Visualisation: off-screen PyVista rendering of meshes and error maps."""

from deep3dmm._lazy import lazy_exports

_EXPORTS = {
    "CAMERAS": "deep3dmm.viz.render",
    "mesh_to_polydata": "deep3dmm.viz.render",
    "render_meshes": "deep3dmm.viz.render",
}

__all__ = [
    "CAMERAS",
    "mesh_to_polydata",
    "render_meshes",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
