"""Files of a fit: mesh (PLY, template topology), code, transform, report, pictures.

``OUT/fit.ply`` is the fitted mesh in the target's frame (it overlays the scan);
``OUT/fit_model_frame.ply`` the decoded mesh before the transform (aligned like the
training data); ``OUT/z.npy`` the latent code; ``OUT/fit.json`` the report (transform,
distances in mm, options, time); ``OUT/fit.png`` target | fit | error heat map and
``OUT/loss.png`` the objective per step.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_path

__all__ = ["write_fit", "fit_figure", "loss_figure"]


def loss_figure(curve, path: str | os.PathLike, *, adam_steps: int) -> Path:
    """The objective per Adam step, then per L-BFGS evaluation (log scale)."""
    from matplotlib.figure import Figure  # no pyplot: no process-wide backend choice

    figure = Figure(figsize=(5, 3.2), dpi=110)
    axis = figure.subplots()
    steps = np.arange(len(curve))
    axis.semilogy(steps[:adam_steps], curve[:adam_steps], label="Adam")
    if len(curve) > adam_steps:
        axis.semilogy(steps[adam_steps:], curve[adam_steps:], label="L-BFGS")
    axis.set_xlabel("objective evaluation")
    axis.set_ylabel("objective (mm + prior)")
    axis.legend()
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    return path


def fit_figure(
    target,
    fitted: np.ndarray,
    faces: np.ndarray,
    error_mm: np.ndarray,
    path: str | os.PathLike,
    *,
    max_mm: float = 5.0,
    back=None,
    camera="front",
) -> Path:
    """Target | fit | error heat map on the fit.

    Args:
        target: ``(vertices, faces)`` of the target (faces ``None``: drawn as points).
        fitted: ``(V, 3)`` the fitted mesh in the target's frame.
        faces: ``(F, 3)`` template triangles.
        error_mm: ``(V,)`` per-vertex error (or distance to the scan) in mm.
        path: output PNG.
        max_mm: top of the colour scale.
        back: optional similarity that brings target and fit to the model frame (so the
            front camera shows the face).
        camera: camera name (``front``, ``-y``, ...).
    """
    from deep3dmm.viz.figures import ERROR_CMAP, ERROR_LABEL
    from deep3dmm.viz.render import render_meshes

    points, target_faces = target
    if back is not None:
        points, fitted = back.apply(points), back.apply(fitted)
    meshes = [(fitted, faces), (fitted, faces), (fitted, faces)]
    marks = [None, None, None]
    titles = ["target", "fit", f"error, mean {float(np.mean(error_mm)):.2f} mm"]
    if target_faces is not None:
        meshes[0] = (points, target_faces)
    else:  # a point cloud: its points over a faint fit
        marks[0] = (points, "steelblue")
    return render_meshes(
        meshes,
        path,
        grid=(1, 3),
        scalars=[None, None, error_mm],
        clim=(0.0, float(max_mm)),
        cmap=ERROR_CMAP,
        scalar_bar_title=ERROR_LABEL,
        scalar_bar="right",
        titles=titles,
        points=marks,
        point_size=3.0,
        shared_camera=True,
        camera=camera,
    )


def write_fit(
    out_dir: str | os.PathLike,
    result,
    index: int,
    faces: np.ndarray,
    report: dict,
    *,
    options,
    target=None,
    error_mm=None,
    figure: bool = True,
) -> dict:
    """Write item ``index`` of a :class:`~deep3dmm.fitting.FitResult` into ``out_dir``."""
    from deep3dmm.mesh import write_mesh
    from deep3dmm.registration.report import write_json
    from deep3dmm.registration.rigid import Similarity

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_mesh(out / "fit.ply", result.vertices[index], faces)
    write_mesh(out / "fit_model_frame.ply", result.model_vertices[index], faces)
    with atomic_path(out / "z.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, result.codes[index])
    similarity = Similarity(
        float(result.scale[index]), result.rotation[index], result.translation[index]
    )
    report = {
        **report,
        "kind": result.kind,
        "data_mm": float(result.data_mm[index]),
        "seconds": round(result.seconds, 3),
        "transform": similarity.to_json(),
        "z": result.codes[index].tolist(),
        "options": dataclasses.asdict(options),
        "files": {"mesh": "fit.ply", "model_frame": "fit_model_frame.ply", "z": "z.npy"},
    }
    loss_figure(result.curve, out / "loss.png", adam_steps=options.adam_steps)
    report["files"]["loss_curve"] = "loss.png"
    if figure and target is not None and error_mm is not None:
        fit_figure(
            target,
            result.vertices[index],
            faces,
            error_mm,
            out / "fit.png",
            back=similarity.inverse(),
        )
        report["files"]["figure"] = "fit.png"
    write_json(out / "fit.json", report)
    return report
