"""A small, generic training loop for image models (classifiers and autoencoders).

:func:`fit` runs Adam over mini-batches of an :class:`~deep3dmm.image_graph.datasets.ImageSplit`
with a seeded shuffle, evaluates on the test split after every epoch, shows a tqdm bar,
and (optionally) writes an atomic checkpoint after every epoch from which it can resume.
:func:`fit_classifier` and :func:`fit_autoencoder` choose the loss and the metric:

- classifier: ``model.training_loss(x, y)`` if the model has one, else cross-entropy of
  ``model(x)``; metric: test accuracy.
- autoencoder: ``model.training_loss(x, weighted=...)`` if present, else MSE of
  ``model(x)``; metric: test MSE.

A checkpoint is written by :func:`deep3dmm.train.checkpoint.save_checkpoint` (the mesh
runs' atomic, durable, versioned writer; read back weights-only by ``load_checkpoint``): a
dict ``{"format", "model", "optimizer", "scheduler", "epoch", "history", "rng", "extra"}``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.datasets import ImageSplit
from deep3dmm.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "fit",
    "fit_classifier",
    "fit_autoencoder",
    "evaluate_accuracy",
    "evaluate_mse",
    "predict",
]

log = logging.getLogger(__name__)

History = list[dict[str, float]]


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 256,
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``fn(batch)`` (default ``model(batch)``) over ``images`` in eval mode, concatenated."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    fn = fn or model
    out = torch.cat(
        [fn(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    )
    model.train(was_training)
    return out


def evaluate_accuracy(model: nn.Module, split: ImageSplit, *, batch_size: int = 256) -> float:
    """Fraction of correctly classified images."""
    logits = predict(model, split.images, batch_size=batch_size)
    return (logits.argmax(1) == split.labels).float().mean().item()


def evaluate_mse(model: nn.Module, split: ImageSplit, *, batch_size: int = 256) -> float:
    """Mean squared reconstruction error per pixel."""
    recon = predict(model, split.images, batch_size=batch_size)
    return (recon - split.images).pow(2).mean().item()


def fit(
    model: nn.Module,
    train: ImageSplit,
    test: ImageSplit,
    *,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    metric_fn: Callable[[nn.Module, ImageSplit], float],
    metric_name: str,
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    extra: dict | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` with Adam and return its history (one dict per epoch).

    Args:
        model: the model (moved to ``device``).
        train: training split.
        test: evaluation split, scored by ``metric_fn`` after every epoch.
        loss_fn: ``(model, images, labels) -> scalar loss``.
        metric_fn: ``(model, split) -> float``.
        metric_name: key of the metric in the history (``test_<name>``).
        epochs: total epochs (with ``resume``, including those already done).
        lr: Adam learning rate (cosine-annealed to 0 over ``epochs``).
        weight_decay: Adam weight decay.
        batch_size: mini-batch size.
        seed: seeds the parameter init (if done by the caller after ``torch.manual_seed``) and
            the shuffling.
        progress: show a tqdm bar.
        checkpoint: file written atomically after every epoch.
        resume: continue from ``checkpoint`` if it exists.
        extra: stored in the checkpoint under ``"extra"`` (e.g. the model config).
        device: default ``"cuda"`` if available else ``"cpu"``.

    Returns:
        ``[{"epoch", "loss", "test_<metric>", "seconds"}, ...]``.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ConfigError(
            f"fit: need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    if len(train) == 0:
        raise ConfigError("fit: the training split is empty")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(seed)
    history: History = []
    start = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["rng"])
        history, start = state["history"], state["epoch"]
        log.info("resumed from %s at epoch %d", checkpoint, start)
    steps = (len(train) + batch_size - 1) // batch_size
    bar = tqdm(
        total=(epochs - start) * steps,
        disable=None if progress else True,
        desc="train",
        unit="step",
    )
    for epoch in range(start, epochs):
        tic = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        for i in range(0, len(train), batch_size):
            idx = order[i : i + batch_size]
            images, labels = train.images[idx].to(device), train.labels[idx].to(device)
            loss = loss_fn(model, images, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        scheduler.step()
        metric = metric_fn(model, test)
        record = {
            "epoch": epoch + 1,
            "loss": total / len(train),
            f"test_{metric_name}": metric,
            "seconds": time.perf_counter() - tic,
        }
        history.append(record)
        bar.set_postfix(
            epoch=epoch + 1, loss=f"{record['loss']:.4f}", **{metric_name: f"{metric:.4f}"}
        )
        log.debug("epoch %d: %s", epoch + 1, record)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": generator.get_state(),
                    "epoch": epoch + 1,
                    "history": history,
                    "extra": extra or {},
                },
            )
    bar.close()
    return history


def _classifier_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    if hasattr(model, "training_loss"):
        return model.training_loss(images, labels)
    return F.cross_entropy(model(images), labels)


def fit_classifier(model: nn.Module, train: ImageSplit, test: ImageSplit, **options) -> History:
    """:func:`fit` with cross-entropy (or ``model.training_loss``) and test accuracy."""
    return fit(
        model,
        train,
        test,
        loss_fn=_classifier_loss,
        metric_fn=evaluate_accuracy,
        metric_name="accuracy",
        **options,
    )


def fit_autoencoder(
    model: nn.Module, train: ImageSplit, test: ImageSplit, *, weighted: bool = False, **options
) -> History:
    """:func:`fit` with (confidence-weighted) MSE and the test MSE."""

    def loss_fn(m: nn.Module, images: torch.Tensor, _labels: torch.Tensor) -> torch.Tensor:
        if hasattr(m, "training_loss"):
            return m.training_loss(images, weighted=weighted)
        return F.mse_loss(m(images), images)

    return fit(
        model,
        train,
        test,
        loss_fn=loss_fn,
        metric_fn=evaluate_mse,
        metric_name="mse",
        **options,
    )
