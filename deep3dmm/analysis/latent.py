r"""Latent-space tools: encode / decode in dataset units, interpolation, deformation transfer.

Interpolation (COMA, Ranjan et al. ECCV 2018, Fig. 8; Neural3DMM, Bouritsas et al.
ICCV 2019) decodes codes on the segment between two meshes' codes:

.. math:: z(t) = (1 - t)\, E(a) + t\, E(b), \qquad t \in [0, 1]

so the endpoints decode to the autoencoder's reconstructions of ``a`` and ``b``.

Deformation transfer by latent arithmetic moves the target ``c`` by the latent
displacement from a source's neutral ``a`` to its deformed state ``b``:

.. math:: z = E(c) + \big(E(b) - E(a)\big)

It is compared with the naive vertex-space transfer :math:`c + (b - a)` and, when the
dataset holds it, with the ground truth: the target subject performing the same
sequence and frame as ``b``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from deep3dmm.metrics import vertex_errors

__all__ = [
    "Interpolation",
    "Transfer",
    "decode",
    "encode",
    "find_ground_truth",
    "interpolate",
    "mean_error_mm",
    "reconstruct",
    "transfer",
]


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in itertools.chain(model.parameters(), model.buffers()):  # pca: buffers only
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def encode(run, vertices: np.ndarray) -> np.ndarray:
    """Latent codes ``(N, latent)`` of raw meshes ``(N, V, 3)`` (dataset unit)."""
    device = _model_device(run.model)
    raw = torch.as_tensor(np.asarray(vertices, dtype=np.float32), device=device)  # (N, V, 3)
    return run.model.encode(run.normalization.normalize(raw)).cpu().numpy()


@torch.no_grad()
def decode(run, codes: np.ndarray) -> np.ndarray:
    """Raw meshes ``(N, V, 3)`` (dataset unit) decoded from codes ``(N, latent)``."""
    device = _model_device(run.model)
    z = torch.as_tensor(np.asarray(codes, dtype=np.float32), device=device)  # (N, latent)
    return run.normalization.denormalize(run.model.decode(z)).cpu().numpy()


def reconstruct(run, vertices: np.ndarray) -> np.ndarray:
    """The autoencoder's reconstructions ``(N, V, 3)`` of raw meshes ``(N, V, 3)``."""
    return decode(run, encode(run, vertices))


def mean_error_mm(a: np.ndarray, b: np.ndarray, *, to_mm: float) -> float:
    """Mean per-vertex Euclidean distance between two ``(V, 3)`` meshes, in mm."""
    return float(vertex_errors(a, b, scale=to_mm).mean())


@dataclass
class Interpolation:
    """Meshes decoded along the segment between two latent codes.

    Attributes:
        t: ``(S,)`` interpolation weights from 0 to 1.
        codes: ``(S, latent)`` codes.
        vertices: ``(S, V, 3)`` decoded meshes in the dataset unit.
    """

    t: np.ndarray
    codes: np.ndarray
    vertices: np.ndarray


def interpolate(run, a: np.ndarray, b: np.ndarray, *, steps: int = 8) -> Interpolation:
    """Decode ``steps`` evenly spaced codes from ``E(a)`` to ``E(b)`` (both included).

    Args:
        run: a :class:`~deep3dmm.train.LoadedRun`.
        a: ``(V, 3)`` raw mesh at ``t = 0`` (dataset unit).
        b: ``(V, 3)`` raw mesh at ``t = 1``.
        steps: number of meshes, endpoints included (>= 2).

    Raises:
        ConfigError: ``steps < 2``.
    """
    from deep3dmm.errors import ConfigError

    if int(steps) < 2:
        raise ConfigError(f"interpolation needs at least 2 steps, got {steps}", fix="--steps 8")
    ends = encode(run, np.stack([a, b]))  # (2, latent)
    t = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)  # (S,)
    codes = (1.0 - t)[:, None] * ends[0] + t[:, None] * ends[1]  # (S, latent)
    return Interpolation(t=t, codes=codes, vertices=decode(run, codes))


@dataclass
class Transfer:
    """Result of a deformation transfer (all meshes ``(V, 3)`` in the dataset unit).

    Attributes:
        result: decoded ``E(c) + E(b) - E(a)``.
        naive: vertex-space transfer ``c + (b - a)``.
        target_reconstruction: decoded ``E(c)``.
        ground_truth: the target performing ``b``'s deformation, or ``None``.
        error_mm: mean per-vertex error of ``result`` against the ground truth (mm).
        naive_error_mm: the same for ``naive``.
        reconstruction_error_mm: error of the autoencoder's reconstruction of the ground
            truth itself (a floor for ``error_mm``).
    """

    result: np.ndarray
    naive: np.ndarray
    target_reconstruction: np.ndarray
    ground_truth: np.ndarray | None = None
    error_mm: float | None = None
    naive_error_mm: float | None = None
    reconstruction_error_mm: float | None = None


def transfer(
    run,
    neutral: np.ndarray,
    deformed: np.ndarray,
    target: np.ndarray,
    *,
    ground_truth: np.ndarray | None = None,
    to_mm: float = 1000.0,
) -> Transfer:
    """Transfer the deformation ``neutral -> deformed`` onto ``target`` in latent space.

    Args:
        run: a :class:`~deep3dmm.train.LoadedRun`.
        neutral: ``(V, 3)`` raw mesh ``a`` (source subject, neutral).
        deformed: ``(V, 3)`` raw mesh ``b`` (source subject, deformed).
        target: ``(V, 3)`` raw mesh ``c`` (target subject, in ``a``'s state).
        ground_truth: optional ``(V, 3)`` expected result, for the error report.
        to_mm: dataset unit in millimetres.
    """
    meshes = [neutral, deformed, target] + ([] if ground_truth is None else [ground_truth])
    z = encode(run, np.stack(meshes))  # (3 or 4, latent)
    decoded = decode(run, np.stack([z[2] + (z[1] - z[0]), z[2], *z[3:]]))
    naive = (np.asarray(target) + (np.asarray(deformed) - np.asarray(neutral))).astype(np.float32)
    out = Transfer(result=decoded[0], naive=naive, target_reconstruction=decoded[1])
    if ground_truth is not None:
        out.ground_truth = np.asarray(ground_truth, dtype=np.float32)
        out.error_mm = mean_error_mm(decoded[0], ground_truth, to_mm=to_mm)
        out.naive_error_mm = mean_error_mm(naive, ground_truth, to_mm=to_mm)
        out.reconstruction_error_mm = mean_error_mm(decoded[2], ground_truth, to_mm=to_mm)
    return out


def find_ground_truth(dataset, deformed_row: int, target_row: int) -> int | None:
    """The row of the target's subject with the deformed row's sequence and frame.

    For COMA-like data (subjects x expression sequences x frames) this is the target
    identity performing the source's expression at the same frame. ``None`` when the
    dataset has no such row, or when it would be the target itself.
    """
    subject = dataset.index[target_row].subject
    source = dataset.index[deformed_row]
    hits = np.flatnonzero(
        (dataset.subjects == subject)
        & (dataset.sequences == source.sequence)
        & (dataset.frames == source.frame)
    )
    hits = [int(h) for h in hits if int(h) != int(target_row)]
    return hits[0] if hits else None
