r"""Non-rigid registration of the template to a scan: similarity, then optimal-step NICP.

Amberg, Romdhani & Vetter, "Optimal Step Nonrigid ICP Algorithms for Surface
Registration" (CVPR 2007), as implemented by ``trimesh.registration.nricp_amberg``:
every template vertex gets an affine transform :math:`X_i`; each step minimises

.. math::
    \sum_i w_i \lVert X_i v_i - u_i \rVert^2
    + \alpha \lVert (M \otimes G) X \rVert^2 + \beta \sum_l \lVert X_{l} v_{l} - p_l \rVert^2

(closest-point data term, stiffness :math:`\alpha` on neighbouring transforms,
landmarks :math:`\beta`), with :math:`\alpha` lowered step by step. This module adds
what trimesh does not do: the similarity initialisation (:mod:`.rigid`), units,
landmark files, and a schedule that starts stiff.

With a statistical shape model of the template's training meshes
(:class:`~deep3dmm.registration.shape_prior.ShapePrior`), NICP is replaced by a fit of
that model to the scan followed by a smooth point-to-plane deformation
(:mod:`.shape_prior`): vertices then keep their correspondence instead of sliding to
their nearest scan points.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from deep3dmm.errors import ConfigError
from deep3dmm.registration.landmarks import TemplateLandmarks
from deep3dmm.registration.rigid import Similarity, align_to_scan, procrustes_similarity
from deep3dmm.registration.scan import Scan
from deep3dmm.registration.shape_prior import (
    ShapePrior,
    deform_to_scan,
    fit_prior_to_scan,
    point_normals,
)

__all__ = ["DEFAULT_STEPS", "Registration", "register_scan"]

logger = logging.getLogger(__name__)

# (stiffness alpha, landmark weight beta, normal weight, max iterations); trimesh scales the
# problem to the template's bounding box, so these are unit-free. Stiff first, then looser.
DEFAULT_STEPS = (
    (0.1, 10.0, 0.5, 10),
    (0.05, 5.0, 0.5, 10),
    (0.02, 2.5, 0.5, 10),
    (0.01, 1.0, 0.5, 10),
    (0.005, 0.5, 0.0, 10),
)


@dataclass
class Registration:
    """A template registered to a scan.

    Attributes:
        vertices: ``(V, 3)`` registered template vertices in the scan's frame (template unit).
        similarity: the template -> scan similarity found before the non-rigid step.
        unit_scale: factor applied to the scan coordinates to bring them to the template unit.
        notes: warnings a user should see (unit conversion, no landmarks, ...).
        iterations: NICP iterations run.
        seconds: wall time of alignment + NICP.
        alignment_cost: mean squared scan -> template distance after the similarity.
    """

    vertices: np.ndarray
    similarity: Similarity
    unit_scale: float
    notes: list[str] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    alignment_cost: float = 0.0

    def in_template_frame(self) -> np.ndarray:
        """``(V, 3)`` the registered vertices with the rigid motion undone (size kept)."""
        return self.similarity.rigid_inverse().apply(self.vertices)


def _check_steps(steps) -> list[list[float]]:
    steps = [list(map(float, s)) for s in steps]
    if not steps or any(len(s) != 4 or s[0] < 0 or s[1] < 0 or s[3] < 1 for s in steps):
        raise ConfigError(
            "NICP steps must be rows (stiffness >= 0, landmark weight >= 0, normal weight, "
            "max iterations >= 1)"
        )
    return [[a, b, c, int(d)] for a, b, c, d in steps]


def register_scan(
    template_vertices: np.ndarray,
    template_faces: np.ndarray,
    scan: Scan,
    *,
    template_landmarks: TemplateLandmarks | None = None,
    scan_landmarks: np.ndarray | None = None,
    steps=DEFAULT_STEPS,
    distance_threshold: float = 0.1,
    unit_scale: float = 1.0,
    notes: list[str] | None = None,
    shape_prior: ShapePrior | None = None,
    deform: bool = True,
    smoothness: float = 30.0,
) -> Registration:
    """Register the template to a scan (similarity, then non-rigid ICP).

    Args:
        template_vertices: ``(V, 3)`` template positions.
        template_faces: ``(F, 3)`` template triangles.
        scan: the scan, already in the template's unit (see ``unit_scale``).
        template_landmarks: landmarks on the template, optional.
        scan_landmarks: ``(K, 3)`` the same landmarks on the scan (scan's unit x unit_scale).
        steps: NICP schedule rows ``(stiffness, landmark weight, normal weight, iterations)``.
        distance_threshold: matches farther than this fraction of the template's bounding
            box diagonal are ignored (outliers, holes, parts the scan lacks).
        unit_scale: recorded in the result (the caller converted the scan).
        notes: notes to carry into the result.
        shape_prior: a linear model of meshes of the template's topology (same unit): fit
            it to the scan instead of running NICP (no tangential sliding).
        deform: with ``shape_prior``, then deform the fit onto the scan (point-to-plane,
            landmarks, bi-Laplacian smoothness ``smoothness``): surface detail the model
            lacks, at the cost of some noise.
        smoothness: weight of the bi-Laplacian term of that deformation.

    Returns:
        :class:`Registration`.
    """
    import trimesh

    steps = _check_steps(steps)
    notes = list(notes or [])
    started = time.perf_counter()
    template_vertices = np.asarray(template_vertices, np.float64)
    lmk_template = None
    if template_landmarks is not None and scan_landmarks is not None:
        lmk_template = template_landmarks.positions(template_vertices, template_faces)
    else:
        steps = [[a, 0.0, c, d] for a, _, c, d in steps]
        notes.append("no landmarks: initial alignment from principal axes + ICP")
    if shape_prior is not None:
        if shape_prior.num_vertices != len(template_vertices):
            raise ConfigError(
                f"the shape prior has {shape_prior.num_vertices} vertices, the template "
                f"{len(template_vertices)}",
                fix="build the prior from meshes registered to this template",
            )
        # the model's frame is its mean shape, whose size the model explains: rigid only
        if lmk_template is not None:
            model_lmk = template_landmarks.positions(shape_prior.mean, template_faces)
            scan_lmk = np.asarray(scan_landmarks, np.float64)
            similarity = procrustes_similarity(model_lmk, scan_lmk, scale=False)
            cost = float(((similarity.apply(model_lmk) - scan_lmk) ** 2).sum(1).mean())
        else:
            similarity, cost = align_to_scan(
                shape_prior.mean, template_faces, scan.points, scale=1.0
            )
        vertices, iterations = _register_with_prior(
            shape_prior,
            template_faces,
            scan,
            similarity,
            template_landmarks=template_landmarks if lmk_template is not None else None,
            scan_landmarks=scan_landmarks,
            deform=deform,
            smoothness=smoothness,
        )
        notes.append(
            f"statistical shape model ({shape_prior.components} components)"
            + (" + smooth point-to-plane deformation" if deform else "")
        )
        return Registration(
            vertices=vertices,
            similarity=similarity,
            unit_scale=unit_scale,
            notes=notes,
            iterations=iterations,
            seconds=time.perf_counter() - started,
            alignment_cost=cost,
        )
    similarity, cost = align_to_scan(
        template_vertices,
        template_faces,
        scan.points,
        template_landmarks=lmk_template,
        scan_landmarks=scan_landmarks,
    )
    source = trimesh.Trimesh(similarity.apply(template_vertices), template_faces, process=False)
    target = scan.trimesh()
    if not scan.has_faces:
        notes.append("point cloud without faces: closest points and normals from its points")
    records = trimesh.registration.nricp_amberg(
        source,
        target,
        source_landmarks=None if lmk_template is None else template_landmarks.for_nricp(),
        target_positions=None if lmk_template is None else np.asarray(scan_landmarks, np.float64),
        steps=steps,
        distance_threshold=distance_threshold,
        return_records=True,
        use_faces=scan.has_faces,
        use_vertex_normals=scan.has_faces,
    )
    return Registration(
        vertices=np.asarray(records[-1], dtype=np.float64),
        similarity=similarity,
        unit_scale=unit_scale,
        notes=notes,
        iterations=len(records) - 1,
        seconds=time.perf_counter() - started,
        alignment_cost=cost,
    )


def _register_with_prior(
    prior: ShapePrior,
    faces: np.ndarray,
    scan: Scan,
    similarity: Similarity,
    *,
    template_landmarks: TemplateLandmarks | None,
    scan_landmarks: np.ndarray | None,
    deform: bool,
    smoothness: float,
) -> tuple[np.ndarray, int]:
    """Model fit (+ deformation) in the model's frame; ``(V, 3)`` vertices in the scan's frame.

    The scan is brought to the model's frame by the similarity's rotation and translation
    only: the model (in the template's unit) explains the subject's size.
    """
    back = similarity.rigid_inverse()
    points = back.apply(scan.points)
    normals = point_normals(points, scan.faces if scan.has_faces else None, None)
    if not scan.has_faces and scan.normals is not None:
        normals = scan.normals @ back.rotation.T
    matrix = landmarks = None
    if template_landmarks is not None and scan_landmarks is not None:
        matrix = template_landmarks.matrix(prior.num_vertices, faces)
        landmarks = back.apply(np.asarray(scan_landmarks, np.float64))
    sigma = _unit_per_mm(prior.unit)  # 1 mm
    vertices, _, iterations = fit_prior_to_scan(
        prior, faces, points, normals, landmark_matrix=matrix, landmarks=landmarks, sigma=sigma
    )
    if deform:
        steps = 5
        vertices = deform_to_scan(
            vertices,
            faces,
            points,
            normals,
            landmark_matrix=matrix,
            landmarks=landmarks,
            landmark_weight=10.0,
            smoothness=smoothness,
            iterations=steps,
        )
        iterations += steps
    return back.inverse().apply(vertices), iterations


def _unit_per_mm(unit: str) -> float:
    """How many of ``unit`` make one millimetre."""
    from deep3dmm.mesh.template import UNITS

    return 1e-3 / UNITS[unit]
