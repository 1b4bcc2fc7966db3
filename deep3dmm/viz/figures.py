"""The analysis figures: error heat maps, comparisons, strips, transfers, receptive fields.

Reconstruction rows with error heat maps, run comparisons, interpolation strips (and
GIFs), deformation transfers and receptive fields of the mapping matrices.

Every function renders through :func:`deep3dmm.viz.render.render_meshes`, off-screen,
with one camera for all panels (same direction and distance, so sizes compare) and
one colour bar with its unit appended on the right. Error maps use a fixed scale
(``max_mm``) so that figures of different runs compare.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import ConfigError
from deep3dmm.viz.render import CAMERAS, render_meshes

__all__ = [
    "ERROR_CMAP",
    "comparison_figure",
    "mean_error_figure",
    "parse_views",
    "receptive_figure",
    "reconstruction_figure",
    "strip_figure",
    "strip_to_gif",
    "transfer_figure",
]

ERROR_CMAP = "turbo"  # jet-like but perceptually smoother
ERROR_LABEL = "per-vertex error (mm)"


def parse_views(views: str | Sequence[str]) -> list[str]:
    """``"front,side"`` -> ``["front", "side"]``, checked against :data:`CAMERAS`.

    Raises:
        ConfigError: an unknown view name.
    """
    names = [v.strip() for v in views.split(",")] if isinstance(views, str) else list(views)
    names = [v for v in names if v]
    unknown = [v for v in names if v not in CAMERAS]
    if not names or unknown:
        raise ConfigError(
            f"unknown view {unknown[0] if unknown else views!r}",
            fix=f"use a comma-separated list of {', '.join(CAMERAS)} (e.g. front,side)",
        )
    return names


def _error_scale(max_mm: float, cmap: str) -> dict:
    """:func:`render_meshes` options of an error heat map: 0 to ``max_mm``, bar on the right."""
    return dict(
        clim=(0.0, float(max_mm)), cmap=cmap, scalar_bar_title=ERROR_LABEL, scalar_bar="right"
    )


def reconstruction_figure(
    faces: np.ndarray,
    inputs: np.ndarray,
    reconstructions: np.ndarray,
    errors_mm: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    max_mm: float = 5.0,
    views: Sequence[str] = ("front",),
    panel_size: int = 256,
    cmap: str = ERROR_CMAP,
) -> Path:
    """One row per mesh: input | reconstruction | error heat map (per view).

    Args:
        faces: ``(F, 3)`` template faces.
        inputs: ``(N, V, 3)`` meshes.
        reconstructions: ``(N, V, 3)`` their reconstructions.
        errors_mm: ``(N, V)`` per-vertex errors in mm.
        path: output PNG.
        labels: name of each mesh (default ``#i``).
        max_mm: top of the fixed colour scale (larger errors saturate).
        views: camera names, one panel triple each.
        panel_size: pixels per panel.
        cmap: colour map of the errors.
    """
    views = parse_views(views)
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(len(inputs))]
    meshes, scalars, titles, cameras = [], [], [], []
    for i in range(len(inputs)):
        for view in views:
            mean = float(np.mean(errors_mm[i]))
            meshes += [(inputs[i], faces), (reconstructions[i], faces), (inputs[i], faces)]
            scalars += [None, None, errors_mm[i]]
            titles += [labels[i], "reconstruction", f"error, mean {mean:.2f} mm"]
            cameras += [view] * 3
    return render_meshes(
        meshes,
        path,
        grid=(len(inputs), 3 * len(views)),
        scalars=scalars,
        **_error_scale(max_mm, cmap),
        titles=titles,
        panel_size=panel_size,
        panel_cameras=cameras,
    )


def mean_error_figure(
    vertices: np.ndarray,
    faces: np.ndarray,
    per_vertex_mm: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "mean error",
    max_mm: float = 5.0,
    views: Sequence[str] = ("front",),
    panel_size: int = 320,
    cmap: str = ERROR_CMAP,
) -> Path:
    """The mean per-vertex error over a split, painted on the template (one panel per view)."""
    views = parse_views(views)
    return render_meshes(
        [(vertices, faces)] * len(views),
        path,
        grid=(1, len(views)),
        scalars=[per_vertex_mm] * len(views),
        **_error_scale(max_mm, cmap),
        titles=[title] + [""] * (len(views) - 1),
        panel_size=panel_size,
        panel_cameras=views,
    )


def comparison_figure(
    faces: np.ndarray,
    inputs: np.ndarray,
    reconstructions: Sequence[np.ndarray],
    errors_mm: Sequence[np.ndarray],
    run_names: Sequence[str],
    path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    max_mm: float = 5.0,
    camera: str = "front",
    panel_size: int = 224,
    cmap: str = ERROR_CMAP,
) -> Path:
    """The same meshes reconstructed by several runs: input | (reconstruction, error) per run.

    Args:
        faces: ``(F, 3)`` template faces.
        inputs: ``(N, V, 3)`` the meshes.
        reconstructions: per run ``(N, V, 3)``.
        errors_mm: per run ``(N, V)`` errors in mm.
        run_names: one name per run (titles carry the run's mean error on each mesh).
        path: output PNG.
        labels: name of each mesh.
        max_mm: top of the fixed colour scale.
        camera: view of every panel.
        panel_size: pixels per panel.
        cmap: colour map of the errors.
    """
    labels = list(labels) if labels is not None else [f"#{i}" for i in range(len(inputs))]
    meshes, scalars, titles = [], [], []
    for i in range(len(inputs)):
        meshes.append((inputs[i], faces))
        scalars.append(None)
        titles.append(f"input {labels[i]}")
        for name, recon, errors in zip(run_names, reconstructions, errors_mm):
            meshes += [(recon[i], faces), (inputs[i], faces)]
            scalars += [None, errors[i]]
            titles += [name, f"{float(np.mean(errors[i])):.2f} mm"]
    return render_meshes(
        meshes,
        path,
        grid=(len(inputs), 1 + 2 * len(run_names)),
        scalars=scalars,
        **_error_scale(max_mm, cmap),
        titles=titles,
        panel_size=panel_size,
        camera=parse_views(camera)[0],
    )


def strip_figure(
    vertices: np.ndarray,
    faces: np.ndarray,
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    camera: str = "front",
    panel_size: int = 200,
) -> Path:
    """A row of meshes ``(S, V, 3)`` (an interpolation) in one PNG, one camera for all."""
    return render_meshes(
        [(v, faces) for v in vertices],
        path,
        grid=(1, len(vertices)),
        titles=titles,
        panel_size=panel_size,
        camera=parse_views(camera)[0],
    )


def strip_to_gif(
    strip: str | os.PathLike,
    frames: int,
    path: str | os.PathLike,
    *,
    duration_ms: int = 150,
    bounce: bool = True,
) -> Path:
    """Cut a one-row strip PNG into ``frames`` equal panels and write an animated GIF.

    Args:
        strip: the PNG written by :func:`strip_figure`.
        frames: its number of panels.
        path: output ``.gif`` (written atomically).
        duration_ms: time per frame.
        bounce: play forward then backward (a -> b -> a), looping.
    """
    from PIL import Image

    image = Image.open(strip).convert("RGB")
    width = image.width // int(frames)
    panels = [image.crop((k * width, 0, (k + 1) * width, image.height)) for k in range(frames)]
    if bounce and frames > 2:
        panels = panels + panels[-2:0:-1]
    panels = [p.quantize(colors=128) for p in panels]
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        panels[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=panels[1:],
            duration=int(duration_ms),
            loop=0,
        )
    return path


def transfer_figure(
    faces: np.ndarray,
    neutral: np.ndarray,
    deformed: np.ndarray,
    target: np.ndarray,
    result: np.ndarray,
    naive: np.ndarray,
    path: str | os.PathLike,
    *,
    ground_truth: np.ndarray | None = None,
    to_mm: float = 1000.0,
    max_mm: float = 5.0,
    camera: str = "front",
    panel_size: int = 224,
    cmap: str = ERROR_CMAP,
) -> Path:
    """A | B | C | latent transfer | naive ``C + (B - A)`` [| ground truth].

    With a ground truth, the two transfers are coloured by their per-vertex error
    against it (mm, fixed scale); without, they are drawn plain.
    """
    meshes = [(m, faces) for m in (neutral, deformed, target, result, naive)]
    titles = ["A source neutral", "B source deformed", "C target", "E(C)+E(B)-E(A)", "C+(B-A)"]
    scalars: list[np.ndarray | None] = [None] * 5
    if ground_truth is not None:
        for k, mesh in ((3, result), (4, naive)):
            scalars[k] = np.linalg.norm(mesh - ground_truth, axis=1) * to_mm
            titles[k] += f"\n{float(scalars[k].mean()):.2f} mm"
        meshes.append((ground_truth, faces))
        scalars.append(None)
        titles.append("ground truth")
    return render_meshes(
        meshes,
        path,
        grid=(1, len(meshes)),
        scalars=scalars if ground_truth is not None else None,
        clim=(0.0, float(max_mm)),
        cmap=cmap,
        scalar_bar_title="error vs ground truth (mm)",
        scalar_bar="right" if ground_truth is not None else "none",
        titles=titles,
        panel_size=panel_size,
        camera=parse_views(camera)[0],
    )


def receptive_figure(
    field,
    path: str | os.PathLike,
    *,
    camera: str = "front",
    panel_size: int = 300,
    cmap: str = "plasma",
) -> Path:
    """Receptive fields: per chosen output vertex, fixed (D/U) | learned (P) weights.

    Input vertices with non-zero weight are drawn as spheres coloured by their weight
    (shared scale) on the input level's surface; the output vertex's position is marked
    in green (hidden under its own input for D, which keeps the vertex).

    Args:
        field: a :class:`~deep3dmm.analysis.receptive.ReceptiveField`.
        path: output PNG.
        camera: view of every panel.
        panel_size: pixels per panel.
        cmap: colour map of the weights.
    """
    matrices = [("fixed " + ("D" if field.direction == "down" else "U"), field.fixed)]
    if field.learned is not None:
        matrices.append(("learned P", field.learned))
    top = max(float(np.abs(m).max()) for _, m in matrices) or 1.0
    meshes, points, titles = [], [], []
    for row, vertex in enumerate(field.outputs):
        for name, matrix in matrices:
            weights = matrix[row]  # (V_in,)
            nonzero = np.flatnonzero(weights)
            meshes.append((field.input_vertices, field.input_faces))
            points.append(
                [
                    (field.output_positions[row][None], "lime"),
                    (field.input_vertices[nonzero], weights[nonzero]),
                ]
            )
            titles.append(f"{name}, out vertex {int(vertex)}: {len(nonzero)} inputs")
    return render_meshes(
        meshes,
        path,
        grid=(len(field.outputs), len(matrices)),
        clim=(0.0, top),
        cmap=cmap,
        scalar_bar_title="weight",
        scalar_bar="right",
        titles=titles,
        points=points,
        point_size=max(6.0, panel_size / 28),
        panel_size=panel_size,
        camera=parse_views(camera)[0],
    )
