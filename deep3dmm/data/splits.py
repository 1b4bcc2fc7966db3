"""Named, deterministic train/val/test splits of a prepared dataset.

Protocols (all computed from the stored, sorted row order of the prepared dataset):

- ``interpolation`` (COMA, Ranjan et al. ECCV 2018): row ``i`` is test when
  ``i % 100 < 10``; the rest is train.
- ``extrapolation``: leave one sequence (expression / motion) out, ``holdout`` names it.
- ``identity``: leave one subject out (default: the last subject in sorted order).
- ``random``: a seeded permutation; ``test_fraction`` of all rows are test.
- ``predefined``: the train/test rows the source itself fixed (e.g. the Neural3DMM
  ``train.npy``/``test.npy`` pair), recorded by the importer in meta.json.

Validation rows are always taken from the non-test rows: ``round(val_fraction * n)`` of
them, evenly spaced over the train rows (a strided, deterministic slice that covers every
subject and sequence), except for ``random``, where they are the next rows of the seeded
permutation. Every split is saved as JSON beside the run, so a run can be reproduced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import ConfigError, DatasetError

__all__ = ["PROTOCOLS", "Split", "make_split"]

PROTOCOLS = ("interpolation", "extrapolation", "identity", "random", "predefined")
PARTS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of the train, validation and test parts of a prepared dataset.

    Attributes:
        train: ``(N_train,) int64`` sorted row indices.
        val: ``(N_val,) int64`` sorted row indices.
        test: ``(N_test,) int64`` sorted row indices.
        protocol: the protocol name (see :data:`PROTOCOLS`).
        params: the protocol parameters (holdout, fractions, seed, dataset content hash).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in PARTS:
            rows = np.asarray(getattr(self, name), dtype=np.int64).reshape(-1)
            object.__setattr__(self, name, np.sort(rows))
        parts = np.concatenate([self.train, self.val, self.test])
        if len(np.unique(parts)) != len(parts):
            raise DatasetError(f"split {self.protocol!r}: train, val and test overlap")

    def __getitem__(self, name: str) -> np.ndarray:
        """Rows of one part: ``split["train"]``."""
        if name not in PARTS:
            raise ConfigError(f"unknown split part {name!r}; expected one of {PARTS}")
        return getattr(self, name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return (
            self.protocol == other.protocol
            and self.params == other.params
            and all(np.array_equal(self[p], other[p]) for p in PARTS)
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes().items())
        return f"Split(protocol={self.protocol!r}, {sizes}, params={self.params})"

    def sizes(self) -> dict[str, int]:
        """Number of rows per part: ``{"train": ..., "val": ..., "test": ...}``."""
        return {name: len(self[name]) for name in PARTS}

    def save(self, path: str | os.PathLike) -> None:
        """Write the split as JSON (atomically)."""
        data = {"protocol": self.protocol, "params": self.params}
        data.update({name: self[name].tolist() for name in PARTS})
        atomic_write_text(path, json.dumps(data) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Split:
        """Read a split written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                train=np.asarray(data["train"], dtype=np.int64),
                val=np.asarray(data["val"], dtype=np.int64),
                test=np.asarray(data["test"], dtype=np.int64),
                protocol=str(data["protocol"]),
                params=dict(data.get("params", {})),
            )
        except FileNotFoundError as exc:
            raise DatasetError("split file not found", path=path) from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"not a split file ({type(exc).__name__}: {exc})",
                path=path,
                fix="write it with Split.save or delete it to recompute the split",
            ) from exc

    def check(self, num_rows: int, *, content_hash: str | None = None) -> None:
        """Check that this split fits a dataset of ``num_rows`` rows (and the same content).

        Raises:
            DatasetError: an index is out of range, or the split was made for another dataset.
        """
        recorded = self.params.get("dataset")
        if content_hash is not None and recorded is not None and recorded != content_hash:
            raise DatasetError(
                f"split was made for dataset content {recorded}, but this dataset's content "
                f"is {content_hash} (re-imported, regenerated or another dataset): its rows "
                "would mix training meshes into the evaluated ones",
                fix="use the dataset the run was trained on, or train a new run on this one",
            )
        for name in PARTS:
            rows = self[name]
            if len(rows) and (rows[0] < 0 or rows[-1] >= num_rows):
                raise DatasetError(
                    f"split part {name!r} indexes row {int(rows[-1])}, but the dataset has "
                    f"{num_rows} rows",
                    fix="recompute the split for this dataset",
                )


def _fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value}")
    return value


def strided_rows(rows: np.ndarray, count: int) -> np.ndarray:
    """``count`` rows evenly spaced over ``rows`` (deterministic)."""
    if count <= 0 or len(rows) == 0:
        return np.empty(0, dtype=np.int64)
    positions = (np.arange(count) * len(rows)) // count + (len(rows) // count) // 2
    return rows[np.minimum(positions, len(rows) - 1)]


def _holdout_mask(values: np.ndarray, holdout: str | Sequence[str], what: str) -> np.ndarray:
    names = [holdout] if isinstance(holdout, str) else list(holdout)
    available = sorted(set(values.tolist()))
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
        raise ConfigError(
            f"holdout {what} {', '.join(map(repr, unknown)) or '(none)'} not in the dataset",
            fix=f"choose from: {shown}",
        )
    return np.isin(values, names)


def _predefined_test(dataset) -> np.ndarray:
    spec = dataset.meta.get("predefined_split")
    if not spec or "test" not in spec:
        raise ConfigError(
            f"dataset from source {dataset.meta.get('source')!r} has no predefined split",
            path=dataset.path,
            fix="use --split interpolation, extrapolation, identity or random "
            "(data.protocol in a config file)",
        )
    ranges = np.asarray(spec["test"], dtype=np.int64).reshape(-1, 2)
    if len(ranges) == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b) for a, b in ranges])


def make_split(
    dataset,
    protocol: str = "interpolation",
    *,
    holdout: str | Sequence[str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Split:
    """Split the rows of a prepared dataset by a named protocol.

    Args:
        dataset: a :class:`~deep3dmm.data.PreparedDataset`.
        protocol: one of :data:`PROTOCOLS`.
        holdout: the sequence (``extrapolation``) or subject (``identity``) held out as test;
            a list holds out several. ``identity`` defaults to the last subject (sorted).
        val_fraction: fraction of the non-test rows used for validation.
        test_fraction: fraction of all rows used for test (``random`` only).
        seed: permutation seed (``random`` only).

    Returns:
        a :class:`Split` whose params record the protocol parameters and the dataset's
        content hash.

    Raises:
        ConfigError: unknown protocol, unknown holdout, fraction out of range.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}", fix=f"use one of {PROTOCOLS}")
    val_fraction = _fraction("val_fraction", val_fraction)
    test_fraction = _fraction("test_fraction", test_fraction)
    n = len(dataset)
    rows = np.arange(n, dtype=np.int64)
    params: dict = {"val_fraction": val_fraction}
    if protocol == "interpolation":
        test_mask = rows % 100 < 10
    elif protocol == "extrapolation":
        if holdout is None:
            raise ConfigError(
                "the extrapolation protocol needs a holdout sequence",
                fix=f"pass holdout=<one of {', '.join(sorted(set(dataset.sequences.tolist())))}>",
            )
        test_mask = _holdout_mask(dataset.sequences, holdout, "sequence")
        params["holdout"] = holdout if isinstance(holdout, str) else list(holdout)
    elif protocol == "identity":
        if holdout is None:
            holdout = sorted(set(dataset.subjects.tolist()))[-1]
        test_mask = _holdout_mask(dataset.subjects, holdout, "subject")
        params["holdout"] = holdout if isinstance(holdout, str) else list(holdout)
    elif protocol == "predefined":
        test_mask = np.isin(rows, _predefined_test(dataset))
    else:  # random
        order = np.random.default_rng(seed).permutation(n)
        n_test = int(round(test_fraction * n))
        n_val = int(round(val_fraction * (n - n_test)))
        params.update(test_fraction=test_fraction, seed=int(seed))
        params["dataset"] = dataset.meta.get("content_hash")
        return Split(
            train=order[n_test + n_val :],
            val=order[n_test : n_test + n_val],
            test=order[:n_test],
            protocol=protocol,
            params=params,
        )
    train = rows[~test_mask]
    val = strided_rows(train, int(round(val_fraction * len(train))))
    params["dataset"] = dataset.meta.get("content_hash")
    return Split(
        train=np.setdiff1d(train, val),
        val=val,
        test=rows[test_mask],
        protocol=protocol,
        params=params,
    )
