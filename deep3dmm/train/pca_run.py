"""Train a ``pca`` run: the linear 3DMM fitted in closed form into an ordinary run folder.

The run folder is the one :class:`~deep3dmm.train.trainer.Trainer` writes (config.toml,
split, normalisation, hierarchy, ``checkpoints/best.pt`` = ``last.pt``, metrics.csv with
one row, curves.png), so every consumer (``evaluate``, ``render``, ``interpolate``,
``transfer``, ``runs compare``, scripts/study.py) reads it unchanged. The fit is one
"epoch": the SVD of the training split (:func:`deep3dmm.nn.fit_pca`); the validation
error is the same mean per-vertex error in mm as a deep run's.

Options of a deep run that do not apply (convolution, pooling, optimiser, epochs, batch
size, ...) are refused by :func:`check_pca_options` rather than silently ignored.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Iterable

import numpy as np
import torch

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import ConfigError
from deep3dmm.metrics import vertex_errors
from deep3dmm.train.checkpoint import RunFiles, load_checkpoint, save_checkpoint

__all__ = ["PCA_APPLIES", "check_pca_options", "fit_pca_run", "is_pca"]

logger = logging.getLogger(__name__)

#: (section, option) pairs that mean something for a pca run; any other given option is an error.
PCA_APPLIES = frozenset(
    {("data", k) for k in ("path", "protocol", "holdout", "val_fraction", "test_fraction")}
    | {("model", "preset"), ("model", "kind"), ("model", "latent")}
    | {("train", k) for k in ("seed", "device", "memory_limit_mb", "eval_batch_size")}
)


def is_pca(config) -> bool:
    """Whether a :class:`~deep3dmm.train.config.RunConfig` is a linear-3DMM run."""
    return config.model.kind == "pca"


def check_pca_options(given: dict[str, dict], names: dict[tuple[str, str], str] | None = None):
    """Refuse options that do not apply to a pca run.

    Args:
        given: the options the user set explicitly, by section (``{"train": {"epochs": 4}}``).
        names: how to name each ``(section, option)`` in the message (e.g. the CLI flag);
            default ``section.option``.

    Raises:
        ConfigError: naming every option that does not apply.
    """
    names = names or {}
    bad = [
        names.get((section, option), f"{section}.{option}")
        for section, values in given.items()
        for option in values
        if (section, option) not in PCA_APPLIES
    ]
    if bad:
        raise ConfigError(
            f"{'option' if len(bad) == 1 else 'options'} {', '.join(bad)} "
            f"{'does' if len(bad) == 1 else 'do'} not apply to --preset pca (the linear 3DMM is "
            "fitted in closed form: no convolution, pooling, optimiser or epochs)",
            fix="remove them; pca takes --latent, --split/--holdout, --seed and --device",
        )


def _errors(model, source, std: torch.Tensor, to_mm: float, batch: int, device):
    """(mean L1 on normalised coordinates, mean per-vertex error in mm) over a split."""
    loss_sum, mm_sum, count = 0.0, 0.0, 0
    loader = torch.utils.data.DataLoader(source, batch_size=batch, shuffle=False)
    with torch.no_grad():
        for x in loader:
            x = x.to(device)  # (b, V, 3) normalised
            prediction = model(x)
            loss_sum += float((prediction - x).abs().mean()) * len(x)
            mm_sum += float(vertex_errors(prediction * std, x * std, scale=to_mm).mean(1).sum())
            count += len(x)
    return loss_sum / max(count, 1), mm_sum / max(count, 1)


def _write_metrics(path, rows: Iterable[dict]) -> None:
    from deep3dmm.train.trainer import METRIC_COLUMNS

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def fit_pca_run(setup, run_dir, *, device: torch.device, quiet: bool = False):
    """Fit (or, when ``last.pt`` exists, reload) the pca run of ``setup`` into ``run_dir``.

    Args:
        setup: the :class:`~deep3dmm.train.trainer.RunSetup` of the run.
        run_dir: the run folder.
        device: where validation runs (the SVD runs on the CPU in float64).
        quiet: no progress bars or log lines.

    Returns:
        a :class:`~deep3dmm.train.trainer.TrainResult` (1 epoch: the closed-form fit).
    """
    from deep3dmm.data import RegisteredMeshDataset
    from deep3dmm.nn import fit_pca
    from deep3dmm.train.trainer import TrainResult, build_model

    files = RunFiles(run_dir)
    config, dataset = setup.config, setup.dataset
    if files.last.is_file():
        state = load_checkpoint(files.last)
        logger.info("pca run %s already fitted; nothing to do", files.root)
        return TrainResult(files.root, int(state["epoch"]), int(state["best"]["epoch"]),
                           float(state["best"]["val_mm"]), float(state["train_seconds"]),
                           int(state["num_parameters"]))  # fmt: skip
    _, resolved = build_model(config, setup.hierarchy)  # checks the preset and options
    latent = int(resolved.model.latent)
    start = time.perf_counter()
    model, info = fit_pca(
        dataset.vertices,
        setup.split.train,
        latent,
        scale=setup.normalization.std,
        offset=setup.normalization.mean,
        max_bytes=config.train.memory_limit_mb * 2**20,
        seed=config.train.seed,
        progress=not quiet,
    )
    fit_seconds = time.perf_counter() - start
    model = model.float().to(device)
    std = torch.as_tensor(setup.normalization.std, device=device)  # (V, 3)
    parts = {
        part: RegisteredMeshDataset(
            dataset, part, split_spec=setup.split, normalization=setup.normalization
        )  # fmt: skip
        for part in ("train", "val")
    }
    batch = config.train.eval_batch_size
    to_mm = dataset.to_millimetres
    train_loss, _ = _errors(model, parts["train"], std, to_mm, batch, device)
    val_loss, val_mm = _errors(model, parts["val"], std, to_mm, batch, device)
    if not math.isfinite(val_mm):
        raise ConfigError(f"the pca fit gave a non-finite validation error ({val_mm})",
                          path=dataset.path, fix="check the data for NaN/inf rows")  # fmt: skip
    seconds = time.perf_counter() - start
    row = {
        "epoch": 1, "train_loss": train_loss, "val_loss": val_loss, "val_mm": val_mm,
        "lr": 0.0, "seconds": round(seconds, 4),
        "meshes_per_s": round(len(setup.split.train) / max(fit_seconds, 1e-9), 2),
    }  # fmt: skip
    template = dataset.template
    state = {
        "epoch": 1,
        "model": {k: v.cpu() for k, v in model.state_dict().items()},
        "model_config": model.config,
        "data": {
            "num_vertices": template.num_vertices,
            "template_hash": template.hash,
            "hierarchy_hash": setup.hierarchy.hash,
            "dataset": str(dataset.path),
            "unit": dataset.unit,
        },
        "history": [row],
        "best": {"epoch": 1, "val_mm": val_mm},
        "train_seconds": seconds,
        # the fitted numbers: components and mean (the scale is the run's normalisation)
        "num_parameters": int(model.components.numel() + model.mean.numel()),
        "fit": {**info, "seconds": fit_seconds},
    }
    save_checkpoint(files.best, state)
    save_checkpoint(files.last, state)
    _write_metrics(files.metrics, [row])
    if not quiet:
        ratio = float(np.sum(info["explained_variance_ratio"]))
        logger.info(
            "pca %s: %d components (%s SVD of %d meshes, %.1f %% of the variance) in %.2f s; "
            "val %.3f mm",
            files.root, latent, info["method"], info["meshes"], 100 * ratio, fit_seconds, val_mm,
        )  # fmt: skip
    return TrainResult(files.root, 1, 1, val_mm, seconds, state["num_parameters"])
