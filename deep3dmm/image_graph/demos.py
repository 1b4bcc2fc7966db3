"""Runnable experiments of image-graph part 2; each writes ``metrics.json`` and a PNG to a folder.

- :func:`run_track_demo`: synthetic MOT, time-aware vs plain message passing, edge
  precision/recall on held-out sequences.
- :func:`run_fewshot_demo`: 5-way 1-shot / 5-shot few-shot GNN, train classes 0-4, test
  classes 5-9, accuracy with 95% intervals.
- :func:`run_deform_demo`: plain vs deformable CNN on rotated/scaled digits.

Active learning has its own runner (:func:`deep3dmm.image_graph.active.run_active_learning`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from deep3dmm.atomic import atomic_write_text
from deep3dmm.image_graph.datasets import load_digits
from deep3dmm.image_graph.deform_compare import compare_deformable, transformed_digits
from deep3dmm.image_graph.demo_plots import plot_deform, plot_fewshot, plot_tracking
from deep3dmm.image_graph.fewshot import EpisodeSampler, evaluate_fewshot, train_fewshot
from deep3dmm.image_graph.tracking import (
    detection_graph,
    edge_precision_recall,
    synthetic_detections,
    train_edge_classifier,
)

__all__ = ["run_deform_demo", "run_fewshot_demo", "run_track_demo"]

log = logging.getLogger(__name__)


def _write(out: Path, name: str, metrics: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / name, json.dumps(metrics, indent=2) + "\n")


def run_track_demo(
    out: str | os.PathLike,
    *,
    train_sequences: int = 20,
    test_sequences: int = 5,
    steps: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train time-aware and plain edge classifiers; precision/recall on held-out sequences.

    Training sequences use seeds ``seed*1000 + i``, test sequences ``seed*1000 + 500 + i``.
    Writes ``track_metrics.json`` and ``track.png`` (the first test sequence).
    """
    out = Path(out)
    train_dets = [synthetic_detections(seed=seed * 1000 + i) for i in range(train_sequences)]
    test_dets = [synthetic_detections(seed=seed * 1000 + 500 + i) for i in range(test_sequences)]
    train = [detection_graph(d) for d in train_dets]
    test = [detection_graph(d) for d in test_dets]
    labels = torch.cat([g.labels for g in test])
    metrics: dict = {
        "train_sequences": train_sequences,
        "test_sequences": test_sequences,
        "steps": steps,
        "seed": seed,
        "test_edges": int(labels.numel()),
        "test_active_edges": int(labels.sum()),
    }
    first_logits = None
    for name, time_aware in (("time_aware", True), ("plain", False)):
        model = train_edge_classifier(
            train, steps=steps, time_aware=time_aware, seed=seed, progress=progress
        )
        with torch.no_grad():
            logits = [model(g.x, g.edge_index, g.edge_attr)[-1] for g in test]
        p, r = edge_precision_recall(torch.cat(logits), labels)
        metrics[name] = {"precision": p, "recall": r}
        log.info("%s: edge precision %.4f, recall %.4f", name, p, r)
        if time_aware:
            first_logits = logits[0]
    _write(out, "track_metrics.json", metrics)
    plot_tracking(test_dets[0], test[0], first_logits, out / "track.png")
    return metrics


def run_fewshot_demo(
    out: str | os.PathLike,
    *,
    shots: tuple[int, ...] = (1, 5),
    n_way: int = 5,
    iterations: int = 300,
    batch: int = 16,
    episodes: int = 500,
    image_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Few-shot GNN: train on episodes of classes 0-4 (train split), test on 5-9 (test split).

    Writes ``fewshot_metrics.json`` and ``fewshot.png``.
    """
    out = Path(out)
    train, test = load_digits(image_size, seed=0)
    metrics: dict = {"n_way": n_way, "iterations": iterations, "episodes": episodes, "seed": seed}
    for k in shots:
        sampler = EpisodeSampler(train, [0, 1, 2, 3, 4], n_way=n_way, k_shot=k, seed=seed)
        model = train_fewshot(
            sampler, iterations=iterations, batch=batch, seed=seed, progress=progress
        )
        test_sampler = EpisodeSampler(test, [5, 6, 7, 8, 9], n_way=n_way, k_shot=k, seed=seed + 1)
        acc, ci = evaluate_fewshot(model, test_sampler, episodes=episodes)
        metrics[f"{k}-shot"] = {"accuracy": acc, "ci95": ci}
        log.info("%d-way %d-shot: %.4f +- %.4f (95%%)", n_way, k, acc, ci)
    _write(out, "fewshot_metrics.json", metrics)
    plot_fewshot(metrics, out / "fewshot.png")
    return metrics


def run_deform_demo(
    out: str | os.PathLike,
    *,
    seeds: tuple[int, ...] = (0, 1),
    epochs: int = 12,
    deformable_stages: int = 2,
    modulated: bool = False,
    progress: bool = True,
) -> dict:
    """Plain vs deformable CNN on rotated/scaled digits; writes ``deform_metrics.json``/``.png``."""
    out = Path(out)
    results = compare_deformable(
        seeds=seeds,
        epochs=epochs,
        deformable_stages=deformable_stages,
        modulated=modulated,
        progress=progress,
    )
    metrics = {
        "seeds": list(seeds),
        "epochs": epochs,
        "deformable_stages": deformable_stages,
        "modulated": modulated,
        "test_accuracy": results,
    }
    _write(out, "deform_metrics.json", metrics)
    _, test = load_digits(32, seed=0)
    plot_deform(transformed_digits(test, seed=2).images[:12], results, out / "deform.png")
    return metrics
