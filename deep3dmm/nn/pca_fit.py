r"""Fit a :class:`~deep3dmm.nn.pca.PCAModel` in closed form: SVD of the centred training meshes.

With :math:`A` the ``(N, 3V)`` matrix of training meshes minus their mean (dataset unit,
float64), :math:`A = U \Sigma V^\top`; the components are the first ``latent`` rows of
:math:`V^\top` and the variances :math:`\sigma_i^2 / N`.

Two paths, chosen by size:

- **exact** (the split fits in ``max_bytes`` as float64): the eigendecomposition of the
  smaller Gram matrix, :math:`A A^\top` or :math:`A^\top A` (float64);
- **randomized, streamed** (larger splits): the randomized range finder with power
  iterations of Halko, Martinsson & Tropp (SIAM Review 2011, Alg. 4.4 + 5.1). Only
  products :math:`A\Omega` and :math:`A^\top Q` are needed, accumulated chunk by chunk
  over the memory-mapped rows, so memory is :math:`O((N + 3V)(k + p))`; the data is read
  ``2 q + 3`` times (mean, range, ``q`` power iterations of two passes, projection).

Each component's sign is fixed so that its largest-magnitude entry is positive, so the
same data gives the same model on every machine.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from deep3dmm.errors import ConfigError
from deep3dmm.nn.pca import PCAModel

__all__ = ["fit_pca", "randomized_svd_streamed"]


def _chunks(vertices, rows: np.ndarray, centre: np.ndarray, chunk: int, desc: str, progress):
    """Yield ``(start, (n, 3V) float64)`` blocks of ``vertices[rows] - centre``."""
    starts = range(0, len(rows), chunk)
    for start in tqdm(starts, desc=desc, unit="chunk", leave=False, disable=None if progress
                      else True):  # fmt: skip
        block = np.asarray(vertices[rows[start : start + chunk]], dtype=np.float64)
        yield start, block.reshape(len(block), -1) - centre


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip rows so that each row's largest-magnitude entry is positive."""
    peak = components[np.arange(len(components)), np.abs(components).argmax(axis=1)]
    return components * np.where(peak < 0, -1.0, 1.0)[:, None]


def _exact_svd(matrix: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``rank`` singular values and right singular vectors of ``(N, D)`` ``matrix``.

    Through the eigendecomposition of the smaller Gram matrix (``A A^T`` when N <= D, else
    ``A^T A``): one matrix product and a small ``eigh``, cheaper than a full SVD of a
    wide matrix; in float64 the leading components agree with ``numpy.linalg.svd`` to
    ~1e-8 (the error of an eigenvalue is ~eps * sigma_1^2).
    """
    if len(matrix) <= matrix.shape[1]:
        eigenvalues, u = np.linalg.eigh(matrix @ matrix.T)  # ascending, (N,), (N, N)
        eigenvalues, u = eigenvalues[::-1][:rank], u[:, ::-1][:, :rank]
        singular = np.sqrt(np.clip(eigenvalues, 0.0, None))
        vt = u.T @ matrix  # (rank, D) = S V^T
        norms = np.linalg.norm(vt, axis=1, keepdims=True)
        # Null directions (rank beyond the data's): any orthonormal completion will do.
        null = norms[:, 0] <= 1e-12 * max(float(singular[0]), 1e-300)
        vt = vt / np.where(null[:, None], 1.0, norms)
        if null.any():
            vt[null] = _complete(vt[~null], int(null.sum()), matrix.shape[1])
        return singular, vt
    eigenvalues, v = np.linalg.eigh(matrix.T @ matrix)  # (D,), (D, D)
    singular = np.sqrt(np.clip(eigenvalues[::-1][:rank], 0.0, None))
    return singular, v[:, ::-1][:, :rank].T


def _complete(rows: np.ndarray, count: int, dim: int) -> np.ndarray:
    """``count`` unit rows orthogonal to the orthonormal ``rows`` and to each other."""
    basis, _ = np.linalg.qr(np.concatenate([rows, np.eye(dim)[: count + len(rows)]]).T)
    return basis[:, len(rows) : len(rows) + count].T


def randomized_svd_streamed(
    vertices,
    rows: np.ndarray,
    centre: np.ndarray,
    rank: int,
    *,
    oversample: int = 10,
    power_iterations: int = 4,
    chunk: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Top ``rank`` singular values and right singular vectors of ``vertices[rows] - centre``.

    Args:
        vertices: ``(N_all, V, 3)`` array-like (a memmap is read chunk by chunk).
        rows: ``(N,)`` rows forming :math:`A`.
        centre: ``(3V,)`` subtracted from every row.
        rank: singular triplets wanted (``<= min(N, 3V)``).
        oversample: extra random directions ``p``.
        power_iterations: ``q``, passes of :math:`(A A^\top)` that sharpen the spectrum.
        chunk: meshes per block.
        seed: seed of the Gaussian test matrix.
        progress: show tqdm bars.

    Returns:
        ``(S, Vt)``: ``(rank,)`` singular values (descending) and ``(rank, 3V)`` rows.
    """
    n, dim = len(rows), centre.shape[0]
    width = min(rank + oversample, n, dim)
    omega = np.random.default_rng(seed).standard_normal((dim, width))  # (3V, l)

    def times(matrix: np.ndarray, desc: str) -> np.ndarray:  # A @ matrix: (N, l)
        out = np.empty((n, matrix.shape[1]))
        for start, block in _chunks(vertices, rows, centre, chunk, desc, progress):
            out[start : start + len(block)] = block @ matrix
        return out

    def transpose_times(matrix: np.ndarray, desc: str) -> np.ndarray:  # A^T @ matrix: (3V, l)
        out = np.zeros((dim, matrix.shape[1]))
        for start, block in _chunks(vertices, rows, centre, chunk, desc, progress):
            out += block.T @ matrix[start : start + len(block)]
        return out

    y = times(omega, "pca range")
    for it in range(power_iterations):
        q, _ = np.linalg.qr(y)
        z, _ = np.linalg.qr(transpose_times(q, f"pca power {it + 1}/{power_iterations}"))
        y = times(z, f"pca power {it + 1}/{power_iterations}")
    q, _ = np.linalg.qr(y)  # (N, l) orthonormal basis of A's range
    b = transpose_times(q, "pca project").T  # (l, 3V) = Q^T A
    _, s, vt = np.linalg.svd(b, full_matrices=False)
    return s[:rank], vt[:rank]


def fit_pca(
    vertices,
    rows,
    latent: int,
    *,
    scale: np.ndarray,
    offset: np.ndarray,
    max_bytes: int = 2 * 2**30,
    chunk: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> tuple[PCAModel, dict]:
    """Fit the linear 3DMM on ``vertices[rows]`` (the training split).

    Args:
        vertices: ``(N_all, V, 3)`` meshes in the dataset unit (numpy array or memmap).
        rows: ``(N,)`` training rows.
        latent: components kept.
        scale: ``(V, 3)`` normalisation scale ``s`` (the run's std).
        offset: ``(V, 3)`` normalisation offset ``mu`` (the run's mean); the model's
            ``mean`` buffer is the training mean in normalised coordinates.
        max_bytes: the exact SVD is used when the ``(N, 3V)`` float64 matrix fits in this.
        chunk: meshes read per block.
        seed: seed of the randomized path.
        progress: show tqdm bars.

    Returns:
        the fitted model and a description of the fit (``method``, ``meshes``,
        ``explained_variance_ratio``, ``total_variance``).

    Raises:
        ConfigError: more components than training meshes or coordinates.
    """
    rows = np.asarray(rows, dtype=np.int64)
    num_vertices = int(vertices.shape[1])
    n, dim = len(rows), 3 * num_vertices
    if latent > min(n, dim):
        raise ConfigError(
            f"PCA with {latent} components needs at least {latent} training meshes; the train "
            f"split has {n}",
            fix="lower --latent or use more data",
        )
    offset = np.asarray(offset, np.float64).reshape(-1)  # (3V,)
    scale = np.asarray(scale, np.float64).reshape(-1)  # (3V,)
    mean = np.zeros(dim)
    total = 0.0  # sum of squared centred coordinates: N * total variance
    for _, block in _chunks(vertices, rows, offset, chunk, "pca mean", progress):
        mean += block.sum(axis=0)
    mean = mean / n + offset  # (3V,) training mean, dataset unit
    if n * dim * 8 <= max_bytes:
        blocks = _chunks(vertices, rows, mean, chunk, "pca read", progress)
        matrix = np.concatenate([block for _, block in blocks])  # (N, 3V)
        total = float(np.square(matrix).sum())
        singular, vt = _exact_svd(matrix, latent)
        method = "exact"
    else:
        for _, block in _chunks(vertices, rows, mean, chunk, "pca variance", progress):
            total += float(np.square(block).sum())
        singular, vt = randomized_svd_streamed(
            vertices, rows, mean, latent, chunk=chunk, seed=seed, progress=progress
        )
        method = "randomized"
    model = PCAModel(num_vertices, latent)
    model.mean.copy_(torch.from_numpy((mean - offset) / scale))
    model.scale.copy_(torch.from_numpy(scale))
    model.components.copy_(torch.from_numpy(_fix_signs(vt)))
    model.variance.copy_(torch.from_numpy(singular**2 / n))
    explained = (singular**2 / total).tolist() if total > 0 else [0.0] * latent
    info = {
        "method": method,
        "meshes": n,
        "explained_variance_ratio": [round(float(r), 8) for r in explained],
        "total_variance": total / n,
    }
    return model, info
