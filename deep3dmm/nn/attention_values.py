r"""The entries of the fused attention mapping, from the picked scores, as one autograd step.

Each output row :math:`i` of an :class:`~deep3dmm.nn.attention_pool.AttentionPool` holds the
padded prior block :math:`M_{i\cdot}` (``w`` entries) and the learned block (the ``k``
picked columns with scores :math:`s_{ij} = \cos(q_i, k_j)`):

.. math::
    v_i = \big[c_0 M_{i\cdot} \;\big|\; c_1 a_{i\cdot}\big],\qquad
    a_{ij} = \frac{s^+_{ij}}{\max(\sum_m s^+_{im}, 10^{-12})}\ (\text{l1})
    \ \text{or}\ \mathrm{softmax}_j(s^+_{ij}),\qquad s^+ = \max(s, 0).

Written as separate autograd operations (clamp, sum, divide, scale, concatenate) every step
keeps four ``(V_out, k)`` intermediates for the backward and runs a dozen passes over them;
at 80k vertices and k = 32 each is 10 MB. Here the forward keeps only the scores, and the
backward recomputes :math:`a` and applies the closed forms

.. math::
    \partial c_0 = \sum \partial v^{M} \odot M,\quad \partial c_1 = \sum \partial v^{a} \odot a,
    \quad g = c_1\, \partial v^{a},\\
    \partial s^+_{ij} = \frac{g_{ij} - \sum_m g_{im} a_{im}}{\max(\sum_m s^+_{im}, 10^{-12})}
    \ (\text{l1; } g_{ij} / 10^{-12} \text{ where the clamp holds}),\qquad
    \partial s^+_{ij} = a_{ij}\big(g_{ij} - \sum_m g_{im} a_{im}\big)\ (\text{softmax}),

and :math:`\partial s = \partial s^+ \odot [s \ge 0]` (the gradient ``clamp_min`` passes).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mapping_values"]

_FLOOR = 1e-12  # the smallest l1 row sum divided by


def _normalised(positive: Tensor, normalize: str) -> tuple[Tensor, Tensor | None]:
    """``(a, row sums)`` of the clamped scores ``(R, k)``; the sums (R, 1) only for l1."""
    if normalize == "l1":
        total = positive.sum(1, keepdim=True)
        return positive / total.clamp_min(_FLOOR), total
    return torch.softmax(positive, dim=1), None


class _MappingValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, prior, c0, c1, normalize):
        weights, _ = _normalised(scores.clamp_min(0.0), normalize)
        ctx.save_for_backward(scores, prior, c0, c1)
        ctx.normalize = normalize
        if prior is None:
            return (weights * c1).reshape(-1)
        rows, width = prior.shape
        out = scores.new_empty(rows, width + scores.shape[1])
        torch.mul(prior, c0, out=out[:, :width])
        torch.mul(weights, c1, out=out[:, width:])
        return out.reshape(-1)

    @staticmethod
    def backward(ctx, grad):
        scores, prior, c0, c1 = ctx.saved_tensors
        rows, k = scores.shape
        grad = grad.view(rows, -1)
        width = 0 if prior is None else prior.shape[1]
        grad_prior, grad_learned = grad[:, :width], grad[:, width:]
        positive = scores.clamp_min(0.0)
        weights, total = _normalised(positive, ctx.normalize)
        grad_c0 = (grad_prior * prior).sum() if prior is not None else None
        grad_c1 = (grad_learned * weights).sum()
        g = grad_learned * c1  # dL/da
        centred = g - (g * weights).sum(1, keepdim=True)
        if ctx.normalize == "l1":
            # where the row sum is below the floor the divisor is a constant: dL/ds+ = g / floor
            grad_positive = torch.where(total >= _FLOOR, centred, g) / total.clamp_min(_FLOOR)
        else:
            grad_positive = centred * weights
        grad_scores = grad_positive * (scores >= 0)
        return grad_scores, None, grad_c0, grad_c1, None


def mapping_values(
    scores: Tensor, prior: Tensor | None, c0: Tensor, c1: Tensor, normalize: str = "l1"
) -> Tensor:
    """The fused mapping's entries ``[c0 M | c1 a]`` row by row, flattened.

    Args:
        scores: ``(R, k)`` cosine scores of the picked columns (differentiable).
        prior: ``(R, w)`` padded prior block (constant), or ``None`` for the learned block
            alone.
        c0: scalar weight of the prior head (differentiable; unused without a prior).
        c1: scalar weight of the learned head (differentiable).
        normalize: ``"l1"`` or ``"softmax"``.

    Returns:
        ``(R * (w + k),)``, or ``(R * k,)`` without a prior.
    """
    return _MappingValues.apply(scores, prior, c0, c1, normalize)
