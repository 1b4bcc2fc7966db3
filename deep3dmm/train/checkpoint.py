"""Checkpoints: atomic save/load of the full training state, and loading a finished run.

``RUN/checkpoints/last.pt`` holds everything needed to continue a run exactly:
model, optimiser, scheduler, completed epochs, RNG states, sampler state (seed and
epoch), the metrics history and the best validation error so far.
``RUN/checkpoints/best.pt`` holds the model with the lowest validation error.
Both are written to a temporary sibling and renamed, so a run killed at any moment
(even with SIGKILL) leaves the previous checkpoint intact.

Each checkpoint records what it was trained on (vertex count, template hash,
hierarchy hash); loading it against another dataset raises :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deep3dmm.atomic import atomic_path, file_digest
from deep3dmm.errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "RunFiles",
    "save_checkpoint",
    "load_checkpoint",
    "safe_torch_load",
    "check_compatible",
    "capture_rng_state",
    "restore_rng_state",
    "clean_stale_temporaries",
    "keep_previous",
    "LoadedRun",
    "load_run",
]

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class RunFiles:
    """The files of a run directory.

    Layout::

        RUN/config.toml          resolved configuration (rebuilds the run)
        RUN/normalization.npz    per-vertex mean / std of the training split
        RUN/split.json           train / val / test indices
        RUN/hierarchy.npz        the mesh hierarchy (D, U, spirals, Laplacians)
        RUN/checkpoints/last.pt  full training state after the last completed epoch
        RUN/checkpoints/best.pt  model with the lowest validation error
        RUN/metrics.csv          one row per epoch
        RUN/curves.png           training curves
        RUN/eval/<split>.json    evaluation summary (+ <split>_per_vertex.npy)

    An image-graph run (:mod:`deep3dmm.image_graph.runs`) uses the same folder: its
    ``config.toml`` holds an ``[image]`` table, ``checkpoints/last.pt`` its training state,
    and ``metrics.json`` (:attr:`summary`) its final test metric and per-epoch history.
    """

    root: Path

    @property
    def config(self) -> Path:
        """RUN/config.toml."""
        return self.root / "config.toml"

    @property
    def normalization(self) -> Path:
        """RUN/normalization.npz."""
        return self.root / "normalization.npz"

    @property
    def split(self) -> Path:
        """RUN/split.json."""
        return self.root / "split.json"

    @property
    def hierarchy(self) -> Path:
        """RUN/hierarchy.npz."""
        return self.root / "hierarchy.npz"

    @property
    def checkpoints(self) -> Path:
        """RUN/checkpoints/."""
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        """RUN/checkpoints/last.pt."""
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        """RUN/checkpoints/best.pt."""
        return self.checkpoints / "best.pt"

    @property
    def metrics(self) -> Path:
        """RUN/metrics.csv."""
        return self.root / "metrics.csv"

    @property
    def curves(self) -> Path:
        """RUN/curves.png."""
        return self.root / "curves.png"

    @property
    def summary(self) -> Path:
        """RUN/metrics.json (image-graph runs: final test metric and history)."""
        return self.root / "metrics.json"

    @property
    def eval(self) -> Path:
        """RUN/eval/."""
        return self.root / "eval"


def capture_rng_state() -> dict[str, Any]:
    """The states of the torch (CPU and CUDA), NumPy and Python random generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically and durably (temporary sibling, fsync, rename).

    Args:
        path: the target ``.pt`` file.
        state: plain containers of tensors, numbers and strings (loadable with
            ``torch.load(weights_only=True)``).

    Raises:
        CheckpointError: the write failed (disk full, file too large, read-only folder);
            the previous file at ``path`` is untouched and no temporary file is left.
    """
    state = {"format": CHECKPOINT_FORMAT, **state}
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:  # torch's zip writer raises RuntimeError
        detail = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise CheckpointError(
            f"could not write the checkpoint ({detail}); the previous one is intact",
            path=path,
            fix="free disk space (or raise the file-size limit), then continue with --resume",
        ) from exc


def safe_torch_load(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as a :class:`CheckpointError`.

    Only tensors, numbers, strings and plain containers are unpickled; a file that holds
    any other object (a class, a callable: the way a crafted ``.pt`` file runs code) is
    refused before anything of it runs.

    Raises:
        CheckpointError: unreadable or truncated, or holding objects beyond weights.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds (pickle, zip, runtime, EOF)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        unsafe = [line for line in lines if "GLOBAL" in line or "Unsupported global" in line]
        if unsafe:
            raise CheckpointError(
                f"refused to load: the file holds pickled objects beyond tensors and plain "
                f"containers ({unsafe[0]}); loading them could run code",
                path=path,
                fix="load only checkpoints written by deep3dmm, from a source you trust",
            ) from exc
        boilerplate = ("Weights only load failed", "Please file", "Check the documentation")
        detail = [line for line in lines if not line.startswith(boilerplate)] or lines or [""]
        raise CheckpointError(
            f"checkpoint is unreadable ({type(exc).__name__}: {detail[0]})",
            path=path,
            fix="the file is damaged (truncated?); resume from another checkpoint "
            "(--resume-from) or retrain",
        ) from exc


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (weights only, never code).

    Raises:
        CheckpointError: missing, unreadable, unsafe, or not a deep3dmm checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            "checkpoint not found",
            path=path,
            fix="train the run first (deep3dmm train --out RUN), or check the run folder",
        )
    state = safe_torch_load(path, map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"not a deep3dmm checkpoint (format {CHECKPOINT_FORMAT} expected)", path=path
        )
    return state


def check_compatible(
    state: dict[str, Any],
    *,
    num_vertices: int,
    template_hash: str,
    path: str | os.PathLike | None = None,
    data_path: str | os.PathLike | None = None,
) -> None:
    """Check that a checkpoint was trained on this template (vertex count, then hash).

    Raises:
        CheckpointError: the vertex count or the template hash differ.
    """
    trained = state.get("data", {})
    source = f" (dataset {data_path})" if data_path is not None else ""
    differences = {  # checked in this order: a vertex count tells more than a hash
        "num_vertices": (
            num_vertices,
            f"meshes with {trained.get('num_vertices')} vertices, but the data has "
            f"{num_vertices}{source}",
        ),
        "template_hash": (
            template_hash,
            f"template {trained.get('template_hash')}, but the data's template is "
            f"{template_hash}{source}: same vertex count, different mesh",
        ),
    }
    for key, (value, message) in differences.items():
        if trained.get(key) != value:
            raise CheckpointError(
                f"checkpoint was trained on {message}",
                path=path,
                fix="use the dataset (and template) the run was trained on",
            )


def keep_previous(path: Path, previous: Path) -> None:
    """Keep the current ``path`` as ``previous`` (a hard link, so no copy) before a rewrite.

    ``path`` itself is never absent: the link is made beside it and renamed onto
    ``previous``, then the caller replaces ``path`` atomically.
    """
    if not path.is_file():
        return
    with atomic_path(previous) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here: copy
            import shutil

            shutil.copyfile(path, tmp)


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporary files that a killed write left behind (``.name.xxxx.pt``)."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for path in sorted(folder.glob(".*.pt")):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@dataclass
class LoadedRun:
    """A trained run, loaded for evaluation or analysis.

    Attributes:
        run_dir: the run folder.
        model: the autoencoder in eval mode with the chosen checkpoint's weights.
        normalization: the train-split statistics (``deep3dmm.data.Normalization``).
        config: the run's :class:`~deep3dmm.train.config.RunConfig`.
        hierarchy: the mesh hierarchy the model was built on.
        split: the train / val / test rows.
        checkpoint: the checkpoint dict without its weights (epoch, history, best, data, ...).
        checkpoint_name: "best" or "last".
        checkpoint_sha256: first 16 hex digits of the checkpoint file's SHA-256.
    """

    run_dir: Path
    model: torch.nn.Module
    normalization: Any
    config: Any
    hierarchy: Any
    split: Any
    checkpoint: dict[str, Any]
    checkpoint_name: str = "best"
    checkpoint_sha256: str = ""

    def open_dataset(self, path: str | os.PathLike | None = None, *, check_split: bool = True):
        """Open the run's dataset (or ``path``) and check it matches the checkpoint.

        With ``check_split`` the run's split must have been made for this dataset's content
        (its ``content_hash``): rows of a re-imported or regenerated dataset would mix
        training meshes into the test rows.

        Raises:
            CheckpointError: the dataset's vertex count or template differ from training.
            DatasetError: the split was made for other data (``check_split``).
        """
        from deep3dmm.data import PreparedDataset

        dataset = PreparedDataset(path or self.config.data.path)
        check_compatible(
            self.checkpoint,
            num_vertices=dataset.template.num_vertices,
            template_hash=dataset.template.hash,
            path=self.run_dir,
            data_path=dataset.path,
        )
        if check_split:
            self.split.check(len(dataset), content_hash=dataset.meta.get("content_hash"))
        return dataset


def load_run(
    run_dir: str | os.PathLike, *, checkpoint: str = "best", device: str | torch.device = "cpu"
) -> LoadedRun:
    """Load a run folder: model (from ``best.pt`` or ``last.pt``), normalisation, config, ...

    Args:
        run_dir: a folder written by ``deep3dmm train``.
        checkpoint: "best" (lowest validation error) or "last".
        device: where to put the model.

    Raises:
        CheckpointError: not a run folder, a missing or damaged file, or a hierarchy that
            does not match the checkpoint.
    """
    from deep3dmm.data import Normalization, Split
    from deep3dmm.mesh import MeshHierarchy
    from deep3dmm.nn import model_from_config
    from deep3dmm.train.config import load_config

    files = RunFiles(Path(run_dir))
    if checkpoint not in ("best", "last"):
        raise CheckpointError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    missing = [
        p.name
        for p in (files.config, files.normalization, files.split, files.hierarchy)
        if not p.is_file()
    ]
    if missing:
        raise CheckpointError(
            f"not a complete run folder: missing {', '.join(missing)}",
            path=files.root,
            fix="pass the folder given to `deep3dmm train --out`",
        )
    path = getattr(files, checkpoint)
    digest = file_digest(path) if path.is_file() else ""
    state = load_checkpoint(path, map_location=device)
    hierarchy = MeshHierarchy.load(files.hierarchy)
    expected = state.get("data", {}).get("hierarchy_hash")
    if expected is not None and hierarchy.hash != expected:
        raise CheckpointError(
            f"hierarchy.npz (hash {hierarchy.hash}) is not the hierarchy the checkpoint was "
            f"trained with ({expected})",
            path=files.hierarchy,
            fix="restore the run folder's original hierarchy.npz",
        )
    model = model_from_config(state["model_config"], hierarchy)
    model.load_state_dict(state.pop("model"))
    model.to(device).eval()
    return LoadedRun(
        run_dir=files.root,
        model=model,
        normalization=Normalization.load(files.normalization),
        config=load_config(files.config),
        hierarchy=hierarchy,
        split=Split.load(files.split),
        checkpoint=state,
        checkpoint_name=checkpoint,
        checkpoint_sha256=digest,
    )
