"""The metric: per-vertex Euclidean error in millimetres (one function for every consumer).

Training (validation error), evaluation (``deep3dmm evaluate``), rendering (heat maps,
comparison figures) and the latent tools all call :func:`vertex_errors`, so every number
and every colour means the same thing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["vertex_errors"]


def vertex_errors(prediction: Any, target: Any, *, scale: float = 1.0, std: Any = None) -> Any:
    r"""Per-vertex Euclidean distance in millimetres.

    .. math::
        e_{bv} = s \, \lVert (\hat{x}_{bv} - x_{bv}) \odot \sigma_v \rVert_2

    with :math:`s` = ``scale`` (the dataset unit in mm, e.g. 1000 for metres) and
    :math:`\sigma` = ``std`` (the normalisation's per-coordinate scale when the inputs are
    normalised; omit it for de-normalised inputs).

    Args:
        prediction: torch tensor or numpy array (numpy is computed in float64).
        target: the same kind and shape.
        scale: dataset unit in millimetres.
        std: ``(V, 3)`` de-normalisation scale, or ``None``.

    Shapes:
        prediction, target: ``(..., V, 3)``; returns ``(..., V)`` (same kind as the input).
    """
    if isinstance(prediction, np.ndarray) or not hasattr(prediction, "dim"):
        diff = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
        if std is not None:
            diff = diff * np.asarray(std, np.float64)
        return np.linalg.norm(diff, axis=-1) * scale
    import torch

    diff = prediction - target
    if std is not None:
        diff = diff * std
    return torch.linalg.vector_norm(diff, dim=-1) * scale
