r"""The linear 3DMM: principal component analysis of the training meshes.

Blanz & Vetter (SIGGRAPH 1999); the baseline of COMA (Ranjan et al., ECCV 2018, Table 2).
The model takes and returns meshes in the run's *normalised* coordinates, like every
autoencoder of the package, but its components are the principal directions of the
meshes in the dataset's own unit, so its least-squares objective is the metric's
(per-vertex Euclidean error in mm), not a per-coordinate rescaled one. With the run's
normalisation :math:`x_{raw} = s \odot x + \mu`:

.. math::
    z = C \big((x - m) \odot s\big), \qquad \hat{x} = m + (C^\top z) \oslash s

with :math:`C` the ``(latent, 3V)`` matrix of orthonormal principal directions (rows),
:math:`m` the training mean in normalised coordinates (zero for the run's own
normalisation) and :math:`s` the normalisation's per-coordinate scale. ``decode(encode(x))``
is the orthogonal projection of the centred mesh onto the first ``latent`` components,
the best rank-``latent`` linear reconstruction of the training set in squared error.

The buffers (``mean``, ``scale``, ``components``, ``variance``) travel in ``state_dict``,
so a checkpoint carries the fitted model; :func:`deep3dmm.nn.fit_pca` fits it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from deep3dmm.errors import ConfigError, TopologyMismatchError

__all__ = ["PCAModel"]

CONFIG_VERSION = 1


class PCAModel(nn.Module):
    """Linear 3DMM with ``encode`` / ``decode`` (see the module docstring for the maths).

    Built empty (zero buffers) by ``PCAModel(num_vertices, latent)``, for a checkpoint to
    fill with ``load_state_dict``; :func:`deep3dmm.nn.fit_pca` returns a fitted one.

    Args:
        num_vertices: ``V``, vertices of the template.
        latent: number of principal components kept.

    Shapes:
        - input ``x``: ``(B, V, 3)``; latent ``z``: ``(B, latent)``; output ``(B, V, 3)``.
        - buffers: ``mean`` and ``scale`` ``(3V,)``, ``components`` ``(latent, 3V)``,
          ``variance`` ``(latent,)`` (the training variance along each component, in the
          dataset unit squared).
    """

    def __init__(self, num_vertices: int, latent: int):
        super().__init__()
        num_vertices, latent = int(num_vertices), int(latent)
        if num_vertices < 1 or latent < 1:
            raise ConfigError(
                f"PCAModel: num_vertices and latent must be >= 1, got {num_vertices}, {latent}"
            )
        self.num_vertices = num_vertices
        self.latent = latent
        dim = 3 * num_vertices
        self.register_buffer("mean", torch.zeros(dim))  # (3V,)
        self.register_buffer("scale", torch.ones(dim))  # (3V,)
        self.register_buffer("components", torch.zeros(latent, dim))  # (latent, 3V)
        self.register_buffer("variance", torch.zeros(latent))  # (latent,)

    @property
    def config(self) -> dict:
        """JSON-serialisable description (``kind = "pca"``) for :meth:`from_config`."""
        return {
            "kind": "pca",
            "latent": self.latent,
            "num_vertices": [self.num_vertices],
            "version": CONFIG_VERSION,
        }

    @classmethod
    def from_config(cls, config: dict) -> PCAModel:
        """An empty model of the shape ``config`` describes (load the weights next)."""
        return cls(int(config["num_vertices"][0]), int(config["latent"]))

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.num_vertices, 3):
            raise TopologyMismatchError(
                f"PCAModel expected meshes of shape (B, {self.num_vertices}, 3), "
                f"received {tuple(x.shape)}",
                fix="register the meshes to the template this model was fitted on",
            )

    def encode(self, x: Tensor) -> Tensor:
        """``(B, V, 3)`` normalised meshes -> ``(B, latent)`` codes (dataset unit)."""
        self._check_input(x)
        centred = (x.reshape(x.shape[0], -1) - self.mean) * self.scale  # (B, 3V)
        return centred @ self.components.T

    def decode(self, z: Tensor) -> Tensor:
        """``(B, latent)`` codes -> ``(B, V, 3)`` normalised meshes."""
        if z.ndim != 2 or z.shape[1] != self.latent:
            raise ConfigError(
                f"PCAModel.decode expected codes (B, {self.latent}), received {tuple(z.shape)}"
            )
        flat = self.mean + (z @ self.components) / self.scale  # (B, 3V)
        return flat.view(z.shape[0], self.num_vertices, 3)

    def forward(self, x: Tensor) -> Tensor:
        """Project ``(B, V, 3)`` normalised meshes onto the components."""
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        """Key sizes for ``repr``."""
        return f"vertices={self.num_vertices}, latent={self.latent}"
