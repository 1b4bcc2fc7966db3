r"""A Gaussian prior on latent codes, fitted to the codes of the training meshes.

.. math::
    z = \mu + L u, \qquad L L^\top = \Sigma + \epsilon I, \qquad
    -\log p(z) = \tfrac12 \lVert u \rVert^2 + \text{const}

Fitting optimises the whitened code ``u`` (``(B, latent)``), so the prior is a plain
squared norm and every latent direction moves at the same pace under Adam.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import ConfigError

__all__ = ["LatentPrior", "training_prior"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatentPrior:
    """Mean ``(latent,)`` and Cholesky factor ``(latent, latent)`` of the training codes.

    Attributes:
        mean: ``mu``.
        cholesky: lower-triangular ``L`` with ``L L^T = Sigma + eps I``.
        count: number of training codes it was fitted to.
    """

    mean: np.ndarray
    cholesky: np.ndarray
    count: int

    @classmethod
    def fit(cls, codes: np.ndarray, *, ridge: float = 1e-6) -> LatentPrior:
        """Fit to codes ``(N, latent)`` (N >= 2); ``ridge`` x the mean variance is added."""
        codes = np.asarray(codes, np.float64)
        if codes.ndim != 2 or len(codes) < 2:
            raise ConfigError(f"a latent prior needs >= 2 codes (N, latent), got {codes.shape}")
        cov = np.atleast_2d(np.cov(codes.T))
        cov += (ridge * max(np.trace(cov) / len(cov), 1e-12)) * np.eye(len(cov))
        return cls(codes.mean(axis=0), np.linalg.cholesky(cov), len(codes))

    def to_code(self, u: torch.Tensor) -> torch.Tensor:
        """``z = mu + u L^T`` for whitened ``u`` ``(B, latent)``."""
        mean = torch.as_tensor(self.mean, dtype=u.dtype, device=u.device)
        chol = torch.as_tensor(self.cholesky, dtype=u.dtype, device=u.device)
        return mean + u @ chol.T

    def whiten(self, z: np.ndarray) -> np.ndarray:
        """``u = L^{-1} (z - mu)`` for codes ``(B, latent)``."""
        from scipy.linalg import solve_triangular

        centered = (np.asarray(z, np.float64) - self.mean).T
        return solve_triangular(self.cholesky, centered, lower=True).T

    def save(self, path, *, key: str) -> None:
        """Write to ``.npz`` atomically, tagged with ``key`` (the checkpoint it came from)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, mean=self.mean, cholesky=self.cholesky, count=self.count, key=key)

    @classmethod
    def load(cls, path, *, key: str) -> LatentPrior | None:
        """The stored prior, or ``None`` when absent, unreadable or from another checkpoint."""
        try:
            with np.load(path) as data:
                if str(data["key"]) != key:
                    return None
                return cls(data["mean"], data["cholesky"], int(data["count"]))
        except (OSError, KeyError, ValueError):
            return None


def training_prior(run, dataset, *, batch_size: int = 64, cache: bool = True) -> LatentPrior:
    """The prior fitted to the encoder's codes of the run's training split.

    Cached in ``RUN/fit/latent_prior.npz``, keyed by the checkpoint (epoch and best
    validation error) and the dataset's content hash, so a retrained run never reuses it.
    """
    from deep3dmm.analysis.inputs import split_rows
    from deep3dmm.analysis.latent import encode

    state = run.checkpoint
    key = f"{state.get('epoch')}:{state.get('best_val_mm', state.get('best'))}:" + str(
        dataset.meta.get("content_hash")
    )
    path = Path(run.run_dir) / "fit" / "latent_prior.npz"
    if cache and path.is_file():
        prior = LatentPrior.load(path, key=key)
        if prior is not None:
            return prior
    rows = split_rows(run, "train", fix="fitting needs the training split's codes")
    codes = np.concatenate(
        [
            encode(run, dataset.vertices[rows[i : i + batch_size]])
            for i in range(0, len(rows), batch_size)
        ]
    )  # (N, latent)
    prior = LatentPrior.fit(codes)
    if cache:
        prior.save(path, key=key)
    logger.info("latent prior fitted to %d training codes", len(codes))
    return prior
