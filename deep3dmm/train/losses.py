"""Training losses (the metric, :func:`deep3dmm.metrics.vertex_errors`, is re-exported)."""

from __future__ import annotations

import torch

from deep3dmm.metrics import vertex_errors

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
