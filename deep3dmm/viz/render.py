"""Off-screen rendering of meshes into a PNG grid (PyVista / VTK).

One function, :func:`render_meshes`: a list of meshes sharing or not sharing a
topology, laid out in a grid of subplots, lit and smooth-shaded, optionally
coloured by per-vertex scalars (e.g. reconstruction errors in mm). Rendering is
always off-screen, so it works on headless machines and in CI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import Deep3DMMError

__all__ = ["CAMERAS", "append_colorbar", "mesh_to_polydata", "render_meshes"]

# Named viewing directions: (direction from the mesh centre to the camera, view up).
CAMERAS = {
    "front": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),  # +z towards the viewer, y up
    "-y": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),  # anny heads/bodies: they look along -y, z up
    "side": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "top": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def mesh_to_polydata(vertices: np.ndarray, faces: np.ndarray):
    """A ``pyvista.PolyData`` of a triangle mesh.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices of triangles.
    """
    import pyvista as pv

    faces = np.asarray(faces, dtype=np.int64)
    cells = np.hstack([np.full((len(faces), 1), 3, dtype=np.int64), faces]).ravel()
    return pv.PolyData(np.asarray(vertices, dtype=np.float64), cells)


def _camera(name_or_spec, center: np.ndarray, radius: float, zoom: float):
    """A PyVista camera position (eye, focal point, view up) looking at ``center``."""
    if isinstance(name_or_spec, str):
        if name_or_spec not in CAMERAS:
            raise Deep3DMMError(
                f"unknown camera {name_or_spec!r}",
                fix=f"use one of {sorted(CAMERAS)} or (direction, view_up)",
            )
        direction, up = CAMERAS[name_or_spec]
    else:
        direction, up = name_or_spec
    direction = np.asarray(direction, dtype=np.float64)
    direction /= np.linalg.norm(direction)
    eye = center + direction * radius * 3.2 / zoom
    return [tuple(eye), tuple(center), tuple(up)]


def render_meshes(
    meshes: Sequence[tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    grid: tuple[int, int] | None = None,
    scalars: Sequence[np.ndarray | None] | None = None,
    clim: tuple[float, float] | None = None,
    cmap: str = "viridis",
    scalar_bar_title: str | None = None,
    titles: Sequence[str] | None = None,
    window_size: tuple[int, int] | None = None,
    panel_size: int = 256,
    camera: str | tuple = "-y",
    zoom: float = 1.0,
    shared_camera: bool = True,
    color: str = "#d9c2b0",
    background: str = "white",
    scalar_bar: str = "vtk",
    points: Sequence[tuple[np.ndarray, np.ndarray | str] | None] | None = None,
    point_size: float = 10.0,
    title_size: int = 8,
    panel_cameras: Sequence[str | tuple] | None = None,
) -> Path:
    """Render meshes into one PNG, one mesh per panel of a grid, lit and smooth-shaded.

    Args:
        meshes: ``(vertices (V_i, 3), faces (F_i, 3))`` pairs.
        path: output ``.png`` (written atomically).
        grid: ``(rows, cols)``; default: one row up to 6 meshes, else ``ceil(n / 6)`` rows.
        scalars: optional per-mesh per-vertex values ``(V_i,)`` (``None`` entries are
            drawn in ``color``), mapped through ``cmap`` with limits ``clim``
            (default: min/max over all meshes) and one scalar bar.
        clim: colour limits of ``scalars``.
        cmap: matplotlib colour map name.
        scalar_bar_title: title of the scalar bar (e.g. ``"error (mm)"``).
        titles: optional text per panel.
        window_size: ``(width, height)`` pixels; default ``panel_size`` per cell.
        panel_size: pixels per grid cell when ``window_size`` is not given.
        camera: a name in :data:`CAMERAS` or ``(direction, view_up)``, the direction
            pointing from the mesh to the camera.
        zoom: > 1 moves the camera closer.
        shared_camera: frame every panel with the same distance (from the largest
            mesh), so sizes compare across panels; else each mesh fills its panel.
        color: surface colour without scalars.
        background: background colour.
        scalar_bar: where the colour bar of ``scalars`` goes: ``"vtk"`` (VTK's bar in the
            last panel), ``"right"`` (a matplotlib bar with ``scalar_bar_title`` as its
            label, appended to the right of the grid so it never covers a mesh) or
            ``"none"``.
        points: optional per-panel markers ``(positions (P, 3), colours)`` (or a list of
            such pairs) drawn as spheres over the surface; ``colours`` is a colour name or
            per-point values ``(P,)`` mapped through ``cmap`` / ``clim`` (``None``: none).
        point_size: marker diameter in pixels.
        title_size: font size of the panel titles.
        panel_cameras: optional camera per panel (overrides ``camera``), e.g. front and
            side views of the same meshes in one picture.

    Returns:
        The written path.
    """
    import pyvista as pv
    from vtkmodules.vtkCommonCore import vtkLogger

    pv.OFF_SCREEN = True
    # Without a display VTK first tries X11 and logs a warning before it falls back to an
    # off-screen context: keep errors, drop that noise.
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    if len(meshes) == 0:
        raise Deep3DMMError("render_meshes needs at least one mesh", path=path)
    n = len(meshes)
    if grid is None:
        cols = min(n, 6)
        grid = (int(np.ceil(n / cols)), cols)
    rows, cols = grid
    if rows * cols < n:
        raise Deep3DMMError(
            f"grid {rows}x{cols} holds {rows * cols} panels but {n} meshes were given",
            path=path,
            fix="enlarge grid or pass fewer meshes",
        )
    if scalar_bar not in ("vtk", "right", "none"):
        raise Deep3DMMError(
            f"unknown scalar_bar {scalar_bar!r}", fix="use 'vtk', 'right' or 'none'"
        )
    if panel_cameras is not None and len(panel_cameras) != n:
        raise Deep3DMMError(f"{n} meshes but {len(panel_cameras)} panel cameras", path=path)
    if points is not None and len(points) != n:
        raise Deep3DMMError(f"{n} meshes but {len(points)} point sets", path=path)
    if scalars is not None and len(scalars) != n:
        raise Deep3DMMError(f"{n} meshes but {len(scalars)} scalar arrays", path=path)
    if window_size is None:
        window_size = (cols * panel_size, rows * panel_size)
    if scalars is not None and clim is None:
        values = [np.asarray(s) for s in scalars if s is not None]
        clim = (
            (float(min(v.min() for v in values)), float(max(v.max() for v in values)))
            if values
            else None
        )

    polys = [mesh_to_polydata(v, f) for v, f in meshes]
    radius = max(0.5 * np.linalg.norm(np.ptp(np.asarray(v), axis=0)) for v, _ in meshes)
    plotter = pv.Plotter(shape=grid, off_screen=True, window_size=tuple(window_size), border=False)
    plotter.set_background(background)
    for i, poly in enumerate(polys):
        plotter.subplot(i // cols, i % cols)
        values = None if scalars is None else scalars[i]
        if values is not None:
            plotter.add_mesh(
                poly,
                scalars=np.asarray(values, dtype=np.float64),
                cmap=cmap,
                clim=clim,
                smooth_shading=True,
                show_scalar_bar=False,
            )
        else:
            plotter.add_mesh(poly, color=color, smooth_shading=True, specular=0.2)
        marks = None if points is None else points[i]
        if marks is not None and not isinstance(marks, list):
            marks = [marks]
        for positions, colours in marks or []:
            cloud = pv.PolyData(np.asarray(positions, dtype=np.float64).reshape(-1, 3))
            style = dict(render_points_as_spheres=True, point_size=point_size)
            if isinstance(colours, str):
                plotter.add_mesh(cloud, color=colours, **style)
            else:
                plotter.add_mesh(
                    cloud,
                    scalars=np.asarray(colours, dtype=np.float64).reshape(-1),
                    cmap=cmap,
                    clim=clim,
                    show_scalar_bar=False,
                    **style,
                )
        if titles is not None and i < len(titles):
            plotter.add_text(titles[i], font_size=title_size, color="black", position="upper_left")
        vertices = np.asarray(meshes[i][0])
        center = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
        own = 0.5 * float(np.linalg.norm(np.ptp(vertices, axis=0)))
        view = camera if panel_cameras is None else panel_cameras[i]
        plotter.camera_position = _camera(view, center, radius if shared_camera else own, zoom)
    if scalars is not None and clim is not None and scalar_bar == "vtk":
        plotter.add_scalar_bar(title=scalar_bar_title or "", color="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if scalar_bar == "right" and clim is not None:
        image = np.asarray(plotter.screenshot(None, return_img=True))  # (H, W, 3) uint8
        plotter.close()
        image = append_colorbar(image, clim=clim, cmap=cmap, label=scalar_bar_title or "")
        from PIL import Image

        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG", optimize=True)
        return path
    with atomic_path(path, suffix=".png") as tmp:
        plotter.screenshot(str(tmp))
    plotter.close()
    return path


def append_colorbar(
    image: np.ndarray,
    *,
    clim: tuple[float, float],
    cmap: str,
    label: str,
    width: int = 110,
    background: str = "white",
) -> np.ndarray:
    """Append a vertical matplotlib colour bar (with a unit label) to the right of an image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB picture.
        clim: value range of the bar.
        cmap: matplotlib colour map name.
        label: axis label, e.g. ``"error (mm)"``.
        width: pixels of the added strip.
        background: its colour.

    Returns:
        ``(H, W + width, 3)`` uint8 RGB picture.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = int(image.shape[0])
    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=background)
    FigureCanvasAgg(figure)
    bar_height = min(0.8, 420 / max(height, 1))
    axis = figure.add_axes((0.12, 0.5 - bar_height / 2, 0.16, bar_height))
    mappable = matplotlib.cm.ScalarMappable(
        norm=matplotlib.colors.Normalize(*clim), cmap=matplotlib.colormaps[cmap]
    )
    bar = figure.colorbar(mappable, cax=axis)
    bar.set_label(label, fontsize=10)
    bar.ax.tick_params(labelsize=9)
    figure.canvas.draw()
    strip = np.asarray(figure.canvas.buffer_rgba())[..., :3]  # (H, width, 3)
    return np.concatenate([np.asarray(image, dtype=np.uint8)[..., :3], strip], axis=1)
