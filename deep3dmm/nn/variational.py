r"""The variational pieces of a mesh VAE: the reparameterised code and the KL term.

Kingma & Welling (ICLR 2014), with the weight :math:`\beta` of Higgins et al. (ICLR 2017).
The encoder of a ``variational`` :class:`~deep3dmm.nn.MeshAutoencoder` outputs a mean
:math:`\mu` and a log-variance :math:`\log\sigma^2` per latent dimension; training decodes

.. math:: z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)

and adds :math:`\beta_e\,\mathrm{KL}\big(\mathcal{N}(\mu, \sigma^2) \,\|\, \mathcal{N}(0, I)\big)`
to the reconstruction loss, with

.. math::
    \mathrm{KL} = \tfrac12 \sum_{j=1}^{d} \big(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\big),
    \qquad \beta_e = \beta \min\!\big(1, \tfrac{e + 1}{W}\big)

(``W`` warm-up epochs, epoch ``e`` counted from 0; ``W = 0``: :math:`\beta` from the start).
Evaluation and every analysis command decode the mean code :math:`\mu`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gaussian_kl", "kl_weight", "reparameterize"]


def reparameterize(mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None):
    """``mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` drawn from ``generator``.

    Shapes:
        mu, logvar: ``(B, d)``; returns ``(B, d)``.
    """
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per sample, summed over the latent dimensions.

    Shapes:
        mu, logvar: ``(B, d)``; returns ``(B,)``.
    """
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)


def kl_weight(beta: float, warmup: int, epoch: int) -> float:
    """The KL weight of epoch ``epoch`` (0-based): ``beta`` ramped linearly over ``warmup``."""
    if warmup <= 0:
        return float(beta)
    return float(beta) * min(1.0, (epoch + 1) / warmup)
