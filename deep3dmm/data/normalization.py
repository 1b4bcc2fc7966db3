r"""Per-vertex normalisation statistics, computed on the training split only.

.. math::
    \hat{x}_{v} = (x_{v} - \mu_{v}) / \max(\sigma_{v}, \epsilon)

with :math:`\mu_v, \sigma_v \in R^3` the mean and (population) standard deviation of
vertex ``v`` over the training meshes (as in COMA and Neural3DMM). The floor
:math:`\epsilon` (default ``1e-8``) only guards against division by zero for
coordinates that never move (e.g. a single training mesh): they normalise to 0 and
denormalise back to the mean exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import DatasetError

__all__ = ["Normalization"]

STD_FLOOR = 1e-8


class Normalization:
    """Per-vertex mean and standard deviation.

    Args:
        mean: ``(V, 3)`` per-vertex mean.
        std: ``(V, 3)`` per-vertex standard deviation (floored at ``floor``).
        floor: smallest allowed std.

    Shapes:
        - normalize / denormalize: ``(..., V, 3)`` numpy array or torch tensor, same type
          (and device, dtype for torch) out.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, *, floor: float = STD_FLOOR):
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        if mean.ndim != 2 or mean.shape[1] != 3 or std.shape != mean.shape:
            raise DatasetError(
                f"Normalization: mean and std must both be (V, 3), got {mean.shape}, {std.shape}"
            )
        self.floor = float(floor)
        self.mean = mean  # (V, 3)
        self.std = np.maximum(std, np.float32(floor))  # (V, 3)
        self._torch: dict = {}

    @classmethod
    def fit(
        cls,
        vertices,
        *,
        indices: np.ndarray | None = None,
        floor: float = STD_FLOOR,
        chunk: int = 1024,
    ) -> Normalization:
        """Fit on meshes ``(N, V, 3)`` (the TRAIN split only), in float64, chunk by chunk.

        Args:
            vertices: ``(N, V, 3)`` array-like (numpy, memmap or torch tensor).
            indices: optional rows of ``vertices`` to use (e.g. ``split.train``), so a
                memory-mapped dataset is never loaded whole.
            floor: smallest allowed std.
            chunk: meshes per chunk (bounds memory).
        """
        if isinstance(vertices, torch.Tensor):
            vertices = vertices.detach().cpu().numpy()
        rows = np.arange(len(vertices)) if indices is None else np.asarray(indices, np.int64)
        if len(rows) == 0:
            raise DatasetError(
                "cannot fit a normalisation on zero meshes",
                fix="the training split is empty; choose another split protocol or holdout",
            )
        count, mean, m2 = 0, None, None
        for start in range(0, len(rows), chunk):
            block = np.asarray(vertices[rows[start : start + chunk]], dtype=np.float64)
            if block.ndim != 3 or block.shape[-1] != 3:
                raise DatasetError(f"Normalization.fit: expected (N, V, 3), got {block.shape}")
            n_b = len(block)
            mean_b = block.mean(axis=0)
            m2_b = ((block - mean_b) ** 2).sum(axis=0)
            if mean is None:
                count, mean, m2 = n_b, mean_b, m2_b
                continue
            # Chan et al. parallel variance update.
            delta = mean_b - mean
            total = count + n_b
            mean = mean + delta * (n_b / total)
            m2 = m2 + m2_b + delta**2 * (count * n_b / total)
            count = total
        return cls(mean, np.sqrt(m2 / count), floor=floor)

    def __repr__(self) -> str:
        return f"Normalization(vertices={len(self.mean)}, floor={self.floor:g})"

    def _stats(self, x):
        if isinstance(x, torch.Tensor):
            key = (x.device, x.dtype)
            if key not in self._torch:
                self._torch[key] = (
                    torch.as_tensor(self.mean, device=x.device, dtype=x.dtype),
                    torch.as_tensor(self.std, device=x.device, dtype=x.dtype),
                )
            return self._torch[key]
        return self.mean, self.std

    def _check(self, x) -> None:
        if tuple(x.shape[-2:]) != self.mean.shape:
            raise DatasetError(
                f"expected (..., {len(self.mean)}, 3) vertices, got {tuple(x.shape)}",
                fix="use the normalisation fitted on this template's training split",
            )

    def normalize(self, x):
        """``(x - mean) / std`` for ``(..., V, 3)`` numpy or torch input."""
        self._check(x)
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x):
        """``x * std + mean`` for ``(..., V, 3)`` numpy or torch input."""
        self._check(x)
        mean, std = self._stats(x)
        return x * std + mean

    def save(self, path: str | os.PathLike) -> None:
        """Write ``mean``, ``std`` and ``floor`` to an ``.npz`` file, atomically."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, mean=self.mean, std=self.std, floor=np.float64(self.floor))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalization:
        """Read statistics written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path) as data:
                return cls(data["mean"], data["std"], floor=float(data["floor"]))
        except FileNotFoundError as exc:
            raise DatasetError("normalisation file not found", path=path) from exc
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(
                f"not a normalisation file ({type(exc).__name__}: {exc})",
                path=path,
                fix="recompute it from the training split",
            ) from exc
