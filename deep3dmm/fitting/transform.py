r"""Batched similarity transforms with a rotation parameterised by an axis-angle vector.

.. math::
    y = s\, \exp([\omega]_\times) R_0\, x + t, \qquad s = e^{\sigma}

``R_0`` is the initial rotation (from a coarse alignment); ``omega`` starts at zero,
so the optimisation explores rotations around it without the gimbal problems of Euler
angles; ``torch.linalg.matrix_exp`` of the skew matrix is Rodrigues' formula.
"""

from __future__ import annotations

import torch

__all__ = ["skew", "rotation_matrix", "apply_similarity"]


def skew(omega: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` vectors -> ``(B, 3, 3)`` skew-symmetric matrices ``[omega]_x``."""
    zero = torch.zeros_like(omega[:, 0])
    x, y, z = omega.unbind(dim=1)
    return torch.stack(
        [
            torch.stack([zero, -z, y], 1),
            torch.stack([z, zero, -x], 1),
            torch.stack([-y, x, zero], 1),
        ],
        dim=1,
    )


def rotation_matrix(omega: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """``exp([omega]_x) R_0``: ``(B, 3)`` and ``(B, 3, 3)`` -> ``(B, 3, 3)``."""
    return torch.linalg.matrix_exp(skew(omega)) @ initial


def apply_similarity(
    x: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """``s R x + t`` for points ``(B, N, 3)``, rotations ``(B, 3, 3)``, ``(B, 3)``, ``(B, 1)``."""
    return torch.exp(log_scale)[:, :, None] * x @ rotation.transpose(1, 2) + translation[:, None]
