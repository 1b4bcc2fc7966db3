r"""Drawing new shapes from a trained run: its latent distribution, samples and traversals.

A run's latent distribution is a Gaussian :math:`\mathcal{N}(m, \Sigma)`:

- a variational run (``model.variational``): the prior, :math:`m = 0`, :math:`\Sigma = I`;
- a plain autoencoder or a ``pca`` run: the Gaussian fitted to the codes of the training
  split (mean codes, :math:`\Sigma` the unbiased covariance, float64), stored in
  ``RUN/latent_gaussian.npz`` with the checkpoint's digest and recomputed when the
  checkpoint changes.

With :math:`\Sigma = Q \Lambda Q^\top` (eigenvalues descending), a sample at temperature
:math:`T` is :math:`z = m + T\, Q \Lambda^{1/2} \varepsilon`, :math:`\varepsilon \sim
\mathcal{N}(0, I)` from a generator seeded with ``seed``; a traversal of dimension ``k``
decodes :math:`z = m + t\, \sqrt{\lambda_k}\, q_k`, :math:`t \in T\,[-3, 3]`: along the unit
axis ``k`` of a VAE's prior, along the ``k``-th principal direction of the training codes
of the others. Decoded meshes are in the dataset's unit (de-normalised).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import ConfigError

__all__ = [
    "LatentGaussian",
    "decode_codes",
    "latent_gaussian",
    "measure_samples",
    "sample_codes",
    "sample_meshes",
    "traversal_codes",
]

logger = logging.getLogger(__name__)

GAUSSIAN_FILE = "latent_gaussian.npz"


@dataclass(frozen=True)
class LatentGaussian:
    """The Gaussian a run's codes are drawn from.

    Attributes:
        mean: ``(d,)`` mean code.
        basis: ``(d, d)`` columns: the principal directions (eigenvectors of the covariance,
            eigenvalue descending; the identity for a VAE's prior).
        std: ``(d,)`` standard deviation along each column of ``basis``.
        source: ``"prior"`` (a VAE) or ``"fitted"`` (training codes).
    """

    mean: np.ndarray
    basis: np.ndarray
    std: np.ndarray
    source: str

    @property
    def dim(self) -> int:
        """Latent size ``d``."""
        return len(self.mean)

    @classmethod
    def fit(cls, codes: np.ndarray) -> LatentGaussian:
        """The Gaussian of ``codes`` ``(N, d)`` (``N >= 2``), in its principal axes."""
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or len(codes) < 2:
            raise ConfigError(f"fitting a Gaussian needs >= 2 codes (N, d), got {codes.shape}")
        cov = np.atleast_2d(np.cov(codes, rowvar=False))  # (d, d), unbiased
        values, vectors = np.linalg.eigh(cov)  # ascending
        order = np.argsort(values)[::-1]
        vectors = vectors[:, order]
        vectors *= np.where(vectors.sum(0) < 0, -1.0, 1.0)  # a fixed sign per direction
        return cls(codes.mean(0), vectors, np.sqrt(np.clip(values[order], 0.0, None)), "fitted")

    @classmethod
    def standard(cls, dim: int) -> LatentGaussian:
        """The prior ``N(0, I)`` of a VAE."""
        return cls(np.zeros(dim), np.eye(dim), np.ones(dim), "prior")


def _checkpoint_key(run) -> str:
    return f"{run.checkpoint_name}:{run.checkpoint_sha256}"


def latent_gaussian(run, *, progress: bool = True, batch_size: int = 64) -> LatentGaussian:
    """The latent distribution of a loaded run (see the module docstring).

    The fitted Gaussian of a plain autoencoder or pca run is read from
    ``RUN/latent_gaussian.npz`` when it was fitted for the same checkpoint file, else
    computed from the training split and written there (atomically).

    Raises:
        ConfigError: the run's model has no latent distribution (not an autoencoder or
            linear 3DMM), or its training split is too small.
    """
    from deep3dmm.nn import MeshAutoencoder, PCAModel

    model = run.model
    if isinstance(model, MeshAutoencoder) and model.options.variational:
        return LatentGaussian.standard(model.options.latent)
    if not isinstance(model, (MeshAutoencoder, PCAModel)):
        raise ConfigError(
            f"this run's model ({type(model).__name__}) has no latent distribution to draw from",
            path=run.run_dir,
            fix="sample from a run of `deep3dmm train` (a deep preset or pca)",
        )
    path = Path(run.run_dir) / GAUSSIAN_FILE
    key = _checkpoint_key(run)
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["checkpoint"]) == key:
                return LatentGaussian(stored["mean"], stored["basis"], stored["std"], "fitted")
    rows = run.split["train"]
    if len(rows) < 2:
        raise ConfigError("the training split has fewer than 2 meshes", path=run.run_dir)
    codes = encode_rows(run, rows, progress=progress, batch_size=batch_size)
    gaussian = LatentGaussian.fit(codes)
    with atomic_path(path) as tmp:
        np.savez(tmp, mean=gaussian.mean, basis=gaussian.basis, std=gaussian.std,
                 checkpoint=np.asarray(key), num_codes=len(codes))  # fmt: skip
    return gaussian


def encode_rows(run, rows: np.ndarray, *, progress: bool = True, batch_size: int = 64):
    """Codes ``(N, d)`` of the dataset rows ``rows`` of a run (the mean code of a VAE)."""
    from deep3dmm.analysis.latent import encode

    dataset = run.open_dataset()
    rows = np.sort(np.asarray(rows))
    chunks = range(0, len(rows), batch_size)
    bar = tqdm(chunks, desc="encoding the training split", unit="batch", disable=not progress)
    return np.concatenate(
        [encode(run, dataset.vertices[rows[i : i + batch_size]]) for i in bar]
    )


def _check(temperature: float) -> float:
    temperature = float(temperature)
    if not (temperature >= 0 and np.isfinite(temperature)):
        raise ConfigError(
            f"temperature must be a finite number >= 0, got {temperature}",
            fix="--temperature 1 draws from the distribution itself; smaller values shrink "
            "the samples towards the mean",
        )
    return temperature


def sample_codes(
    gaussian: LatentGaussian, count: int, *, temperature: float = 1.0, seed: int = 0
) -> np.ndarray:
    """``count`` codes ``(count, d)`` drawn from ``gaussian`` at ``temperature`` (seeded).

    Raises:
        ConfigError: ``count < 1`` or a negative temperature.
    """
    temperature = _check(temperature)
    if int(count) < 1:
        raise ConfigError(f"the number of samples must be >= 1, got {count}", fix="-n 16")
    generator = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(int(count), gaussian.dim, generator=generator, dtype=torch.float64)
    scaled = eps.numpy() * (temperature * gaussian.std)  # (count, d) in the principal axes
    return gaussian.mean + scaled @ gaussian.basis.T


def traversal_codes(
    gaussian: LatentGaussian, dim: int, *, steps: int = 7, temperature: float = 1.0,
    extent: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Codes along direction ``dim``: ``m + t * std_dim * basis[:, dim]``.

    Returns:
        ``t`` ``(steps,)`` in standard deviations (``temperature * [-extent, extent]``) and
        the codes ``(steps, d)``.

    Raises:
        ConfigError: ``dim`` outside ``[0, d)``, ``steps < 2`` or a negative temperature.
    """
    temperature = _check(temperature)
    if not 0 <= int(dim) < gaussian.dim:
        raise ConfigError(
            f"latent dimension {dim} is out of range: the latent has {gaussian.dim} dimensions",
            fix=f"--traverse 0 .. {gaussian.dim - 1}",
        )
    if int(steps) < 2:
        raise ConfigError(f"a traversal needs at least 2 steps, got {steps}", fix="--steps 7")
    t = temperature * np.linspace(-extent, extent, int(steps))  # (S,)
    direction = gaussian.std[dim] * gaussian.basis[:, dim]  # (d,)
    return t, gaussian.mean + t[:, None] * direction


def decode_codes(run, codes: np.ndarray, *, batch_size: int = 64, progress: bool = False):
    """Meshes ``(N, V, 3)`` in the dataset's unit decoded from codes ``(N, d)``, in batches."""
    from deep3dmm.analysis.latent import decode

    codes = np.asarray(codes, dtype=np.float32)
    chunks = range(0, len(codes), batch_size)
    bar = tqdm(chunks, desc="decoding", unit="batch", disable=not progress)
    return np.concatenate([decode(run, codes[i : i + batch_size]) for i in bar])


def sample_meshes(
    run, count: int, *, temperature: float = 1.0, seed: int = 0, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, LatentGaussian]:
    """``count`` new meshes of a run, deterministic for ``seed``.

    Returns:
        codes ``(count, d)``, meshes ``(count, V, 3)`` (dataset unit) and the distribution.
    """
    gaussian = latent_gaussian(run, progress=progress)
    codes = sample_codes(gaussian, count, temperature=temperature, seed=seed)
    return codes, decode_codes(run, codes, progress=progress), gaussian


def measure_samples(
    run, *, split: str = "test", count: int | None = None, temperature: float = 1.0,
    seed: int = 0, progress: bool = True,
):  # fmt: skip
    """Sample quality of a run against one split (:func:`deep3dmm.analysis.set_measures`).

    Draws ``count`` meshes (default: as many as the split holds, so 1-NN accuracy compares
    sets of equal size) and measures them against the split's meshes, distances in mm.

    Returns:
        a :class:`~deep3dmm.analysis.set_measures.SetMeasures`.

    Raises:
        ConfigError: an empty split, ``count < 1`` or a negative temperature.
    """
    from deep3dmm.analysis.inputs import split_rows
    from deep3dmm.analysis.set_measures import set_measures

    rows = np.sort(split_rows(run, split, fix="measure against another --split"))
    dataset = run.open_dataset()
    reference = np.asarray(dataset.vertices[rows], dtype=np.float32)  # (R, V, 3)
    _, samples, _ = sample_meshes(
        run, len(rows) if count is None else count, temperature=temperature, seed=seed,
        progress=progress,
    )  # fmt: skip
    return set_measures(samples, reference, scale=dataset.to_millimetres)
