r"""Fit a trained model to an observation: latent code and similarity transform.

.. math::
    \min_{u,\ \omega,\ t,\ \sigma}\ E_\text{data}\big(s R\, D(\mu + L u) + t\big)
    + w_\ell E_\text{landmarks} + \tfrac{w_p}{2} \lVert u \rVert^2

through the frozen decoder :math:`D` (the run's de-normalised output, in mm), with
:math:`R = \exp([\omega]_\times) R_0`, :math:`s = e^\sigma` (fixed at 1 unless asked)
and the Gaussian prior of :mod:`.prior`. Adam first (robust to the poor start of a
scan fit, correspondences refreshed at every step), then L-BFGS rounds (fast final
convergence; correspondences fixed within a round). Every item of a batch is fitted
independently but in one vectorised pass; the best iterate of each item (lowest
objective) is kept, so a fit started from the encoder never ends worse than it started.

Initialisation: the encoder's code for a registered target, else the prior mean; the
pose from landmarks (Procrustes) or from principal axes + ICP of the mean shape
against the scan (:func:`deep3dmm.registration.align_to_scan`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.fitting.losses import (
    KERNELS,
    landmark_loss,
    point_distances,
    registered_loss,
    robust_mean,
    vertex_normals,
)
from deep3dmm.fitting.model import FitModel
from deep3dmm.fitting.transform import apply_similarity, rotation_matrix

__all__ = ["FitOptions", "FitResult", "fit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitOptions:
    """Optimisation options (distances in mm).

    Attributes:
        adam_steps: Adam steps.
        adam_lr: Adam learning rate of the whitened code (rotation and translation use
            0.2x and 10x of it, in radians and mm).
        lbfgs_rounds: L-BFGS rounds (correspondences refreshed between rounds).
        lbfgs_iterations: L-BFGS iterations per round.
        prior_weight: ``w_p``, weight of the latent prior.
        landmark_weight: ``w_l``, weight of the landmark term when a target is also given.
        kernel: robust kernel of scan distances, "trimmed" or "geman-mcclure".
        trim: fraction of the largest distances dropped by the trimmed kernel (scans).
        partial_trim: the same for partial scans, default 0 (every scan point counts).
            Each point of a partial scan has its counterpart on the full model (what is
            missing is the scan's part, not the model's), and the points a rank trim
            drops are those the fit drifts away from: the ones along the cut, which hold
            the pose. Trimming 10 % there measured 1.30-1.85x the registered fit on
            6 held-out ICT meshes against 1.04-1.36x without (docs/fitting.md). Gross
            outliers (hair, background) call for ``kernel="geman-mcclure"``.
        sigma_mm: width of the Geman-McClure kernel.
        tangent: weight of the in-plane part of point-to-plane distances.
        fit_pose: optimise rotation and translation (else keep the initial pose).
        fit_scale: also optimise a global scale.
        warn_mm: warn when the final median distance exceeds this (no latent explains it).
        tolerance: early stop: Adam ends when ``patience`` steps lowered the best
            objective by less than this fraction of it, the L-BFGS rounds when a whole
            round does; 0 runs every step.
        patience: Adam steps the early-stop test looks back over.
        registered_adam: run Adam for registered targets too (else L-BFGS only: the
            encoder's code is already close, and the per-vertex loss is smooth).
        pose_starts: scans without landmarks: how many ICP alignments of the mean shape
            (lowest cost first, rotations ``pose_separation`` degrees apart or more) are
            tried; each runs ``screen_steps`` Adam steps of the real objective and the
            lowest objective wins. 1: the ICP winner alone.
        pose_separation: see ``pose_starts`` (degrees).
        pose_cost_ratio: only alignments whose ICP cost is within this factor of the
            lowest are tried (an unambiguous ICP winner costs no screen).
        screen_steps: see ``pose_starts``.
        partial_overlap: for a partial scan, also pull the model vertices that lie over
            the scanned part (their nearest scan point is not on the scan's border and
            within ``overlap_factor`` x the median scan -> model distance) onto the scan;
            the rest of the model stays free. Off by default: on the ICT partial scans
            it measured worse (4.21 vs 3.95 mm on a held-out mesh).
        overlap_factor: see ``partial_overlap``.
    """

    adam_steps: int = 120
    adam_lr: float = 0.05
    lbfgs_rounds: int = 3
    lbfgs_iterations: int = 15
    prior_weight: float = 0.01
    landmark_weight: float = 1.0
    kernel: str = "trimmed"
    trim: float = 0.1
    partial_trim: float = 0.0
    sigma_mm: float = 10.0
    tangent: float = 0.2
    fit_pose: bool = True
    fit_scale: bool = False
    warn_mm: float = 5.0
    tolerance: float = 1e-3
    patience: int = 10
    registered_adam: bool = False
    pose_starts: int = 3
    pose_separation: float = 30.0
    pose_cost_ratio: float = 2.0
    screen_steps: int = 20
    partial_overlap: bool = False
    overlap_factor: float = 3.0

    def check(self) -> None:
        """Raise :class:`ConfigError` on a bad value."""
        if self.kernel not in KERNELS:
            raise ConfigError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.adam_steps < 0 or self.lbfgs_rounds < 0 or self.lbfgs_iterations < 1:
            raise ConfigError("adam_steps, lbfgs_rounds must be >= 0, lbfgs_iterations >= 1")
        if self.adam_steps + self.lbfgs_rounds == 0:
            raise ConfigError("nothing to optimise: adam_steps and lbfgs_rounds are both 0")
        if self.prior_weight < 0 or self.landmark_weight < 0:
            raise ConfigError("prior_weight and landmark_weight must be >= 0")
        if not (0 <= self.trim < 1 and 0 <= self.partial_trim < 1):
            raise ConfigError("trim and partial_trim must be in [0, 1)")
        if self.pose_starts < 1 or self.screen_steps < 0:
            raise ConfigError("pose_starts must be >= 1 and screen_steps >= 0")
        if self.tolerance < 0 or self.patience < 1:
            raise ConfigError("tolerance must be >= 0 and patience >= 1")


@dataclass
class FitResult:
    """A fit (all arrays batched; dataset unit unless named ``_mm``).

    Attributes:
        vertices: ``(B, V, 3)`` fitted meshes in the target's frame.
        model_vertices: ``(B, V, 3)`` the decoded meshes before the transform (model frame).
        codes: ``(B, latent)`` latent codes ``z``.
        rotation: ``(B, 3, 3)``; translation: ``(B, 3)``; scale: ``(B,)``.
        data_mm: ``(B,)`` final data term (mean distance, mm).
        curve: objective (mean over the batch) after each Adam step and L-BFGS evaluation.
        seconds: wall time of the optimisation.
        kind: "registered", "scan", "partial" or "landmarks".
    """

    vertices: np.ndarray
    model_vertices: np.ndarray
    codes: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    data_mm: np.ndarray
    curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    kind: str = "registered"


class _Problem:
    """Parameters, correspondences and the objective of one (batched) fit."""

    def __init__(
        self,
        fm: FitModel,
        u0,
        rotation0,
        translation0_mm,
        options,
        *,
        registered,
        scan,
        partial,
        landmarks,
        landmark_matrix,
    ):
        from scipy.spatial import cKDTree

        self.fm, self.options = fm, options
        device = fm.mean.device
        batch = len(u0)
        self.u = torch.tensor(u0, dtype=torch.float32, device=device, requires_grad=True)
        self.omega = torch.zeros(batch, 3, device=device, requires_grad=options.fit_pose)
        self.shift = torch.zeros(batch, 3, device=device, requires_grad=options.fit_pose)
        self.log_scale = torch.zeros(batch, 1, device=device, requires_grad=options.fit_scale)
        self.rotation0 = torch.as_tensor(rotation0, dtype=torch.float32, device=device)
        self.translation0 = torch.as_tensor(translation0_mm, dtype=torch.float32, device=device)
        self.faces = torch.as_tensor(fm.faces, dtype=torch.long, device=device)
        self.registered = (
            None
            if registered is None
            else torch.as_tensor(registered, dtype=torch.float32, device=device)
        )  # (B, V, 3) mm
        self.scan, self.partial = scan, partial
        if scan is not None:
            self.scan_points = torch.tensor(scan["points"], dtype=torch.float32, device=device)
            self.scan_normals = (
                None
                if scan["normals"] is None
                else torch.tensor(scan["normals"], dtype=torch.float32, device=device)
            )
            self.scan_tree = cKDTree(scan["points"])
            self.scan_border = _border_points(scan)
        self.landmarks = (
            None
            if landmarks is None
            else torch.as_tensor(landmarks, dtype=torch.float32, device=device)[None]
        )  # (1, K, 3) mm
        self.landmark_matrix = (
            None
            if landmark_matrix is None
            else torch.as_tensor(landmark_matrix, dtype=torch.float32, device=device)
        )
        self.match_scan = self.match_model = self.overlap = None

    def parameters(self) -> list[dict]:
        lr = self.options.adam_lr
        groups = [{"params": [self.u], "lr": lr}]
        if self.options.fit_pose:
            groups += [
                {"params": [self.omega], "lr": 0.2 * lr},
                {"params": [self.shift], "lr": 10 * lr},
            ]
        if self.options.fit_scale:
            groups.append({"params": [self.log_scale], "lr": 0.2 * lr})
        return groups

    def vertices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model-frame meshes, rotations and target-frame meshes (mm)."""
        model = self.fm.decode_mm(self.u)  # (B, V, 3)
        rotation = rotation_matrix(self.omega, self.rotation0)
        moved = apply_similarity(model, rotation, self.translation0 + self.shift, self.log_scale)
        return model, rotation, moved

    @torch.no_grad()
    def refresh(self) -> None:
        """Nearest-neighbour correspondences at the current estimate (scan targets)."""
        if self.scan is None:
            return
        from scipy.spatial import cKDTree

        x = self.vertices()[2][0].cpu().numpy()  # (V, 3)
        scan_dist, match_scan = cKDTree(x).query(self.scan["points"])
        self.match_scan = torch.as_tensor(match_scan)  # (P,)
        if not self.partial or self.options.partial_overlap:
            model_dist, match_model = self.scan_tree.query(x)
            self.match_model = torch.as_tensor(match_model)  # (V,)
        if self.partial and self.options.partial_overlap:
            limit = self.options.overlap_factor * np.median(scan_dist)
            overlap = (model_dist <= limit) & ~self.scan_border[match_model]
            self.overlap = torch.as_tensor(np.flatnonzero(overlap))  # model vertex ids

    def objective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item objective ``(B,)`` and data term ``(B,)`` (mm)."""
        o = self.options
        _, _, x = self.vertices()
        data = torch.zeros(len(x), device=x.device)
        if self.registered is not None:
            data = data + registered_loss(x, self.registered)
        if self.scan is not None:
            normals = vertex_normals(x, self.faces)  # (1, V, 3)
            d = point_distances(
                self.scan_points[None],
                x[:, self.match_scan],
                normals[:, self.match_scan],
                tangent=o.tangent,
            )
            trim = o.partial_trim if self.partial else o.trim
            terms = [robust_mean(d, kernel=o.kernel, sigma=o.sigma_mm, trim=trim)]
            if self.partial and self.overlap is not None and len(self.overlap):
                match = self.match_model[self.overlap]
                normals = None if self.scan_normals is None else self.scan_normals[match][None]
                d = point_distances(
                    x[:, self.overlap], self.scan_points[match][None], normals, tangent=o.tangent
                )
                terms.append(robust_mean(d, kernel=o.kernel, sigma=o.sigma_mm, trim=o.trim))
            if not self.partial:
                normals = (
                    None if self.scan_normals is None else self.scan_normals[self.match_model][None]
                )
                d = point_distances(
                    x, self.scan_points[self.match_model][None], normals, tangent=o.tangent
                )
                terms.append(robust_mean(d, kernel=o.kernel, sigma=o.sigma_mm, trim=o.trim))
            data = data + sum(terms) / len(terms)
        total = data.clone()
        if self.landmarks is not None:
            weight = (
                o.landmark_weight if (self.registered is not None or self.scan is not None) else 1.0
            )
            lmk = landmark_loss(x, self.landmark_matrix, self.landmarks)
            total = total + weight * lmk
            if self.registered is None and self.scan is None:
                data = lmk
        total = total + 0.5 * o.prior_weight * (self.u**2).sum(dim=1)
        return total, data


def _border_points(scan: dict) -> np.ndarray:
    """``(P,) bool``: scan points on the border of a mesh scan (an edge of one face only).

    A point cloud has no known border: all ``False`` (the distance limit does the work).
    """
    points, faces = scan["points"], scan.get("faces")
    border = np.zeros(len(points), dtype=bool)
    if faces is None or not len(faces):
        return border
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    border[unique[counts == 1].reshape(-1)] = True
    return border


def _scan_dict(scan, to_mm: float) -> dict:
    """Scan points (mm) and, for a mesh scan, its vertex normals."""
    normals = None
    if scan.has_faces:
        import trimesh

        normals = np.asarray(trimesh.Trimesh(scan.points, scan.faces, process=False).vertex_normals)
    elif scan.normals is not None:
        normals = scan.normals
    return {
        "points": np.asarray(scan.points, np.float64) * to_mm,
        "normals": normals,
        "faces": np.asarray(scan.faces) if scan.has_faces else None,
    }


def _initial_poses(fm: FitModel, u0, options, *, scan, landmarks, landmark_matrix, batch):
    """Candidate ``(R_0 (B, 3, 3), t_0 (B, 3) mm)`` pairs: identity, landmarks or axes + ICP.

    Without landmarks a scan gives up to ``options.pose_starts`` ICP-refined alignments of
    the mean shape (lowest ICP cost first, rotations at least ``options.pose_separation``
    degrees apart, cost within ``options.pose_cost_ratio`` of the lowest); the others one
    pair.
    """
    from deep3dmm.registration.rigid import alignment_candidates, procrustes_similarity

    rotation, translation = np.tile(np.eye(3), (batch, 1, 1)), np.zeros((batch, 3))
    if scan is None and landmarks is None:
        return [(rotation, translation)]
    with torch.no_grad():
        mean = fm.decode_mm(torch.as_tensor(u0, dtype=torch.float32))[0].cpu().numpy()
    model_lmk = None if landmark_matrix is None else landmark_matrix @ mean
    if scan is None:
        similarities = [procrustes_similarity(model_lmk, landmarks, scale=False)]
    else:
        ranked = alignment_candidates(
            mean,
            fm.faces,
            scan["points"],
            scale=1.0,
            template_landmarks=model_lmk,
            scan_landmarks=landmarks,
        )
        similarities = []
        limit = np.deg2rad(options.pose_separation)
        for cost, candidate in ranked:  # a loop over <= 25 candidates
            if len(similarities) == options.pose_starts:
                break
            if similarities and cost > options.pose_cost_ratio * ranked[0][0]:
                break  # clearly worse than the ICP winner: not a contender
            turns = [_angle(candidate.rotation @ s.rotation.T) for s in similarities]
            if all(turn > limit for turn in turns):
                similarities.append(candidate)
    out = []
    for similarity in similarities:
        r, t = rotation.copy(), translation.copy()
        r[0], t[0] = similarity.rotation, similarity.translation
        out.append((r, t))
    return out


def _angle(rotation: np.ndarray) -> float:
    """Rotation angle (radians) of a ``(3, 3)`` rotation."""
    return float(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))


def _screen(make_problem, poses, steps: int):
    """The pose whose short Adam run (``steps`` steps) reaches the lowest objective.

    ICP ranks rigid alignments of the mean shape; a partial scan (or a subject far from
    the mean) can rank a wrong one first. A few steps of the real objective, shape and
    pose together, decide between the best few instead.
    """
    if len(poses) == 1 or steps == 0:
        return poses[0]
    scores = []
    for rotation, translation in poses:  # a loop over <= pose_starts starts
        problem = make_problem(rotation, translation)
        adam = torch.optim.Adam(problem.parameters())
        lowest = float("inf")
        for _ in range(steps):
            problem.refresh()
            total, _ = problem.objective()
            lowest = min(lowest, float(total.detach().sum()))
            adam.zero_grad(set_to_none=True)
            total.sum().backward()
            adam.step()
        scores.append(lowest)
    logger.debug("pose starts: objectives %s", scores)
    return poses[int(np.argmin(scores))]


def _converged(history: list[float], patience: int, tolerance: float) -> bool:
    """Whether the last ``patience`` steps lowered the best objective by < ``tolerance`` of it."""
    if not tolerance or len(history) <= patience:
        return False
    before, now = history[-patience - 1], history[-1]
    return before - now <= tolerance * abs(now)


def fit(
    fm: FitModel,
    *,
    registered: np.ndarray | None = None,
    scan=None,
    partial: bool = False,
    landmarks: np.ndarray | None = None,
    model_landmarks=None,
    options: FitOptions = FitOptions(),
    progress: bool = False,
) -> FitResult:
    """Fit the model to registered meshes, a scan, a partial scan and/or landmarks.

    Args:
        fm: the prepared run (:class:`FitModel`).
        registered: ``(B, V, 3)`` or ``(V, 3)`` meshes in the template's topology (dataset
            unit): per-vertex loss, initialised from the encoder.
        scan: a :class:`~deep3dmm.registration.Scan` in the dataset unit (mesh or point cloud).
        partial: the scan covers part of the surface: scan -> model distances only.
        landmarks: ``(K, 3)`` target landmark positions (dataset unit).
        model_landmarks: :class:`~deep3dmm.registration.TemplateLandmarks` on the template.
        options: :class:`FitOptions`.
        progress: show a progress bar.

    Raises:
        ConfigError: no target, both a registered mesh and a scan, landmarks without their
            template counterpart, or a count mismatch.
    """
    from tqdm.auto import tqdm

    options.check()
    if registered is None and scan is None and landmarks is None:
        raise ConfigError("nothing to fit: give a registered mesh, a scan or landmarks")
    if registered is not None and scan is not None:
        raise ConfigError("give a registered mesh or a scan, not both")
    if partial and scan is None:
        raise ConfigError("--partial applies to scans (one-sided scan -> model distance)")
    if (landmarks is None) != (model_landmarks is None):
        raise ConfigError(
            "landmarks need both the target points and the model's landmark ids",
            fix="pass --landmarks and --model-landmarks",
        )
    matrix = None
    if landmarks is not None:
        from deep3dmm.registration.landmarks import check_counts

        landmarks = np.asarray(landmarks, np.float64) * fm.to_mm
        check_counts(landmarks, model_landmarks)
        matrix = model_landmarks.matrix(len(fm.mean), fm.faces).toarray()  # (K, V)
    if registered is not None:
        registered = np.asarray(registered, np.float32)
        registered = registered[None] if registered.ndim == 2 else registered
        u0 = fm.encode_whitened(registered)
        registered = registered * fm.to_mm
        kind = "registered"
    else:
        u0 = np.zeros((1, fm.latent))
        kind = "landmarks" if scan is None else ("partial" if partial else "scan")
    batch = len(u0)
    scan_data = None if scan is None else _scan_dict(scan, fm.to_mm)
    started = time.perf_counter()
    poses = _initial_poses(
        fm, u0, options, scan=scan_data, landmarks=landmarks, landmark_matrix=matrix, batch=batch
    )

    def make_problem(rotation0, translation0) -> _Problem:
        return _Problem(
            fm,
            u0,
            rotation0,
            translation0,
            options,
            registered=registered,
            scan=scan_data,
            partial=partial,
            landmarks=landmarks,
            landmark_matrix=matrix,
        )

    problem = make_problem(*_screen(make_problem, poses, options.screen_steps))
    params = [p for g in problem.parameters() for p in g["params"]]
    best = {"total": torch.full((batch,), float("inf"))}
    curve: list[float] = []

    def keep_best(total: torch.Tensor, data: torch.Tensor) -> None:
        better = total.detach() < best["total"]
        best["total"] = torch.where(better, total.detach(), best["total"])
        for p in params + [problem.log_scale]:
            name = id(p)
            best[name] = torch.where(
                better.view(-1, *[1] * (p.ndim - 1)), p.detach(), best.get(name, p.detach())
            )
        best["data"] = torch.where(better, data.detach(), best.get("data", data.detach()))

    bar = tqdm(
        total=options.adam_steps + options.lbfgs_rounds,
        desc=f"fit {kind}",
        unit="step",
        disable=None if progress else True,
        leave=False,
    )
    adam_steps = options.adam_steps
    if kind == "registered" and not options.registered_adam and options.lbfgs_rounds > 0:
        adam_steps = 0
    adam = torch.optim.Adam(problem.parameters())
    history: list[float] = []
    for _ in range(adam_steps):
        problem.refresh()
        total, data = problem.objective()
        keep_best(total, data)
        curve.append(float(total.detach().mean()))
        history.append(float(best["total"].sum()))
        if _converged(history, options.patience, options.tolerance):
            break
        adam.zero_grad(set_to_none=True)
        total.sum().backward()
        adam.step()
        bar.update(1)
    lbfgs = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=options.lbfgs_iterations,
        line_search_fn="strong_wolfe",
    )
    previous = curve[-1] if curve else float("inf")
    for _ in range(options.lbfgs_rounds):
        problem.refresh()

        def closure():
            lbfgs.zero_grad(set_to_none=True)
            total, _ = problem.objective()
            curve.append(float(total.detach().mean()))
            loss = total.sum()
            loss.backward()
            return loss

        lbfgs.step(closure)
        current = curve[-1]
        bar.update(1)
        if options.tolerance and previous - current <= options.tolerance * abs(current):
            break
        previous = current
    problem.refresh()
    with torch.no_grad():
        total, data = problem.objective()
        keep_best(total, data)
        for p in params + [problem.log_scale]:
            p.copy_(best[id(p)])
        model, rotation, moved = problem.vertices()
    bar.close()
    scale = torch.exp(problem.log_scale.detach())[:, 0]
    result = FitResult(
        vertices=moved.cpu().numpy() / fm.to_mm,
        model_vertices=model.cpu().numpy() / fm.to_mm,
        codes=fm.prior.to_code(problem.u.detach()).cpu().numpy(),
        rotation=rotation.cpu().numpy(),
        translation=(problem.translation0 + problem.shift.detach()).cpu().numpy() / fm.to_mm,
        scale=scale.cpu().numpy(),
        data_mm=best["data"].cpu().numpy(),
        curve=curve,
        seconds=time.perf_counter() - started,
        kind=kind,
    )
    return result
