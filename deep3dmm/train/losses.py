"""Training losses and the reconstruction error metric in millimetres."""

from __future__ import annotations

import torch

__all__ = ["l1_loss", "vertex_errors"]


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Mean absolute error over all coordinates (the COMA / Neural3DMM training loss).

    .. math::
        \mathcal{L} = \frac{1}{B V 3} \sum_{b, v, c} |\hat{x}_{bvc} - x_{bvc}|

    computed on normalised coordinates.

    Shapes:
        prediction, target: ``(B, V, 3)``; returns a scalar.
    """
    return (prediction - target).abs().mean()


def vertex_errors(
    prediction: torch.Tensor, target: torch.Tensor, *, scale: float = 1.0
) -> torch.Tensor:
    r"""Per-vertex Euclidean distance, times ``scale`` (e.g. metres -> millimetres).

    .. math::
        e_{bv} = s \, \lVert \hat{x}_{bv} - x_{bv} \rVert_2

    Both inputs must be de-normalised (in the dataset's unit).

    Shapes:
        prediction, target: ``(B, V, 3)``; returns ``(B, V)``.
    """
    return torch.linalg.vector_norm(prediction - target, dim=-1) * scale
