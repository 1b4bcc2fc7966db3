"""A torch Dataset over one split of a prepared dataset, normalised per vertex."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import torch
from torch.utils.data import Dataset

from deep3dmm.data.normalization import Normalization
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.data.splits import Split, make_split
from deep3dmm.errors import ConfigError

__all__ = ["RegisteredMeshDataset"]

SPLITS = ("train", "val", "test", "all")


class RegisteredMeshDataset(Dataset):
    """Meshes of one split of a prepared dataset as normalised ``(V, 3)`` tensors.

    The split comes from ``split_spec`` or is computed with :func:`make_split`
    (``protocol``, ``holdout``, ``seed``). The normalisation comes from
    ``normalization`` or is fitted on the TRAIN part of the split (never on val/test),
    so a val/test dataset built with the same arguments uses the train statistics.

    Args:
        dataset: a :class:`PreparedDataset` or its folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        split_spec: a precomputed :class:`Split` (e.g. loaded from a run directory).
        normalization: precomputed statistics; fitted on the train split when ``None``.
        normalize: return normalised meshes (``False``: raw coordinates in the dataset unit).
        protocol: split protocol when ``split_spec`` is ``None``.
        holdout: held-out sequence/subject for the ``extrapolation``/``identity`` protocols.
        seed: seed of the ``random`` protocol.

    Shapes:
        - ``ds[i]``: ``(V, 3) float32``
        - ``ds.tensor()``: ``(len(ds), V, 3) float32``
    """

    def __init__(
        self,
        dataset: PreparedDataset | str | os.PathLike,
        split: str = "train",
        *,
        split_spec: Split | None = None,
        normalization: Normalization | None = None,
        normalize: bool = True,
        protocol: str = "interpolation",
        holdout: str | Sequence[str] | None = None,
        seed: int = 0,
    ):
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}", fix=f"use one of {SPLITS}")
        self.prepared = (
            dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)
        )
        if split_spec is None:
            split_spec = make_split(self.prepared, protocol, holdout=holdout, seed=seed)
        split_spec.check(len(self.prepared), content_hash=self.prepared.meta.get("content_hash"))
        self.split_spec = split_spec
        self.split = split
        self.normalize = bool(normalize)
        self.indices = (
            np.arange(len(self.prepared), dtype=np.int64) if split == "all" else split_spec[split]
        )  # (N_split,) rows of the prepared dataset
        if normalization is not None:
            self.__dict__["normalization"] = normalization

    @cached_property
    def normalization(self) -> Normalization:
        """Per-vertex statistics (given, or fitted on the train split on first use)."""
        return Normalization.fit(self.prepared.vertices, indices=self.split_spec.train)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (
            f"RegisteredMeshDataset({str(self.prepared.path)!r}, split={self.split!r}, "
            f"protocol={self.split_spec.protocol!r}, meshes={len(self)}, "
            f"vertices={self.prepared.template.num_vertices}, normalize={self.normalize})"
        )

    def _load(self, rows: np.ndarray) -> np.ndarray:
        vertices = np.asarray(self.prepared.vertices[rows], dtype=np.float32)  # (n, V, 3)
        if self.normalize:
            vertices = self.normalization.normalize(vertices).astype(np.float32, copy=False)
        return vertices

    def __getitem__(self, i: int) -> torch.Tensor:
        """Mesh ``i`` of this split, ``(V, 3) float32``."""
        row = self.indices[i]  # IndexError past the end, like a list
        return torch.from_numpy(self._load(np.array([row]))[0])

    def __getitems__(self, items: Sequence[int]) -> list[torch.Tensor]:
        """Batched fetch used by ``DataLoader``: one memory-map read per batch."""
        batch = torch.from_numpy(self._load(self.indices[np.asarray(items, dtype=np.int64)]))
        return list(batch.unbind(0))

    def tensor(self) -> torch.Tensor:
        """All meshes of this split, ``(len, V, 3) float32`` (for in-memory training)."""
        return torch.from_numpy(np.ascontiguousarray(self._load(self.indices)))
