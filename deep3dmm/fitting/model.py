"""A trained run prepared for fitting: frozen decoder, normalisation, latent prior, in mm.

Fitting works in millimetres whatever the dataset unit, so losses, weights and robust
kernel widths mean the same thing for every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deep3dmm.fitting.prior import LatentPrior, training_prior

__all__ = ["FitModel"]


@dataclass
class FitModel:
    """What fitting needs from a run.

    Attributes:
        model: the autoencoder with pooling frozen and no trainable parameters.
        mean, std: ``(V, 3)`` normalisation tensors (dataset unit).
        faces: ``(F, 3)`` template triangles.
        to_mm: dataset unit in millimetres.
        prior: the Gaussian prior on latent codes.
        unit: the dataset unit.
    """

    model: torch.nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    faces: np.ndarray
    to_mm: float
    prior: LatentPrior
    unit: str = "m"

    @classmethod
    def from_run(cls, run, dataset=None, *, prior: LatentPrior | None = None) -> FitModel:
        """Prepare a :class:`~deep3dmm.train.LoadedRun` (its dataset opened when not given).

        Attention pooling is frozen into constant sparse matrices first (same outputs,
        no attention recomputed at every step), then every parameter is frozen.
        """
        dataset = dataset if dataset is not None else run.open_dataset()
        model = run.model
        if hasattr(model, "freeze_pooling") and not getattr(model, "frozen", True):
            model.freeze_pooling()
        model.eval().requires_grad_(False)
        device = next(iter(model.buffers()), torch.zeros(0)).device
        norm = run.normalization
        return cls(
            model=model,
            mean=torch.as_tensor(norm.mean, device=device),
            std=torch.as_tensor(norm.std, device=device),
            faces=np.asarray(dataset.template.faces),
            to_mm=float(dataset.to_millimetres),
            prior=prior if prior is not None else training_prior(run, dataset),
            unit=dataset.unit,
        )

    @property
    def latent(self) -> int:
        """Latent size."""
        return len(self.prior.mean)

    def decode_mm(self, u: torch.Tensor) -> torch.Tensor:
        """Whitened codes ``(B, latent)`` -> meshes ``(B, V, 3)`` in mm (model frame)."""
        z = self.prior.to_code(u)
        return (self.model.decode(z) * self.std + self.mean) * self.to_mm

    @torch.no_grad()
    def encode_whitened(self, vertices: np.ndarray) -> np.ndarray:
        """Whitened encoder codes ``(B, latent)`` of meshes ``(B, V, 3)`` (dataset unit)."""
        x = torch.as_tensor(np.asarray(vertices, np.float32), device=self.mean.device)
        z = self.model.encode((x - self.mean) / self.std).cpu().numpy()
        return self.prior.whiten(z)
