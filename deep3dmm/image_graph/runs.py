"""Image-graph runs: one folder per trained model, built from a frozen config.

A run folder holds ``config.json`` (:class:`ImageRunConfig`), ``checkpoint.pt`` (written
atomically after every epoch; resumable) and ``metrics.json`` (history and the final test
metric). :func:`train_run` creates one, :func:`load_run` rebuilds the model from it, and
:func:`summarize_runs` groups runs that differ only in their seed (mean and spread).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import CheckpointError, ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits
from deep3dmm.image_graph.models import (
    GRAPH_METHODS,
    KEYPOINT_METHODS,
    KeypointGraphAutoencoder,
    KeypointGraphClassifier,
)
from deep3dmm.image_graph.shapes import load_shapes
from deep3dmm.image_graph.train import fit_autoencoder, fit_classifier, load_checkpoint

__all__ = ["ImageRunConfig", "load_data", "build_model", "train_run", "load_run", "summarize_runs"]

log = logging.getLogger(__name__)

TASKS = ("classify", "reconstruct")
MODELS = ("graph", "cnn")
DATASETS = ("digits", "shapes")
WINDOWED = ("maxpool", "regress")  # keypoint methods that read ``window``


@dataclass(frozen=True)
class ImageRunConfig:
    """Everything that defines an image run (validated on construction).

    Args:
        task: ``"classify"`` or ``"reconstruct"``.
        model: ``"graph"`` (keypoint-graph model) or ``"cnn"`` (CNN-only baseline; classify).
        dataset: ``"digits"`` (scikit-learn digits, fixed split seed 0) or ``"shapes"``.
        size: image side in pixels.
        keypoints: ``topk``, ``maxpool``, ``regress`` or ``compat``.
        graph: ``gcn``, ``gat`` or ``diffpool``.
        num_keypoints: graph size.
        window: NMS window / regression cell on the ``size/2`` score map.
        hidden: graph node channels.
        layers: graph layers.
        widths: CNN channels (the baseline uses all three, the graph models the first two).
        adjacency: adjacency builder.
        aux_weight: weight of DiffPool's auxiliary (link + entropy) loss.
        weighted: reconstruct with the confidence-weighted MSE.
        epochs, lr, batch_size, seed: optimisation.
    """

    task: str = "classify"
    model: str = "graph"
    dataset: str = "digits"
    size: int = 32
    keypoints: str = "maxpool"
    graph: str = "gcn"
    num_keypoints: int = 16
    window: int = 4
    hidden: int = 64
    layers: int = 2
    widths: tuple[int, ...] = (32, 64, 128)
    adjacency: str = "inverse_distance"
    aux_weight: float = 0.1
    weighted: bool = False
    epochs: int = 8
    lr: float = 3e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        for name, value, choices in (
            ("task", self.task, TASKS),
            ("model", self.model, MODELS),
            ("dataset", self.dataset, DATASETS),
            ("keypoints", self.keypoints, KEYPOINT_METHODS),
            ("graph", self.graph, GRAPH_METHODS),
        ):
            if value not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        if self.model == "cnn" and self.task != "classify":
            raise ConfigError("the CNN-only baseline is a classifier", fix="use --task classify")
        if self.task == "reconstruct" and self.graph == "diffpool":
            raise ConfigError(
                "reconstruct needs node positions; diffpool clusters have none",
                fix="use --graph gcn or gat",
            )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        self._reject_unused()

    def _reject_unused(self) -> None:
        """Options that would have no effect are errors, never silently ignored."""
        default = {f.name: f.default for f in dataclasses.fields(self)}
        if self.window != default["window"] and (
            self.model == "cnn" or self.keypoints not in WINDOWED
        ):
            raise ConfigError(
                f"window (--window {self.window}) does not apply to "
                + ("the CNN baseline" if self.model == "cnn" else f"{self.keypoints} keypoints")
                + f"; it is the NMS window / regression cell of {' and '.join(WINDOWED)}",
                fix="drop --window, or use --keypoints maxpool or regress",
            )
        if self.weighted and self.task != "reconstruct":
            raise ConfigError(
                "weighted (--weighted) applies to the reconstruct task only (the "
                "confidence-weighted MSE); classify would ignore it",
                fix="drop --weighted, or train the reconstruct task",
            )

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> ImageRunConfig:
        """Rebuild from :meth:`to_json`'s dict (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown image run config keys {unknown}")
        return cls(**data)

    def label(self) -> str:
        """A short description without the seed (to group seeds)."""
        if self.model == "cnn":
            return f"{self.task} cnn {self.dataset}{self.size}"
        extra = " weighted" if self.weighted else ""
        return (
            f"{self.task} {self.keypoints}+{self.graph} n={self.num_keypoints} "
            f"{self.dataset}{self.size}{extra}"
        )


def load_data(config: ImageRunConfig) -> tuple[ImageSplit, ImageSplit]:
    """Train and test splits of the config's dataset (split fixed across seeds)."""
    if config.dataset == "digits":
        return load_digits(config.size, seed=0)
    return load_shapes(600, 300, config.size, seed=0)


def build_model(config: ImageRunConfig, *, num_classes: int) -> nn.Module:
    """The config's model, freshly initialised with ``torch.manual_seed(config.seed)``."""
    torch.manual_seed(config.seed)
    if config.model == "cnn":
        return SmallCNN(1, num_classes, config.widths, image_size=config.size)
    options = dict(
        image_size=config.size,
        widths=config.widths[:2],
        keypoints=config.keypoints,
        num_keypoints=config.num_keypoints,
        window=config.window,
        graph=config.graph,
        hidden=config.hidden,
        layers=config.layers,
        adjacency=config.adjacency,
    )
    if config.task == "classify":
        return KeypointGraphClassifier(num_classes, aux_weight=config.aux_weight, **options)
    return KeypointGraphAutoencoder(**options)


def train_run(
    config: ImageRunConfig, out: str | os.PathLike, *, progress: bool = True, resume: bool = False
) -> dict:
    """Train the config's model into the run folder ``out``; returns ``metrics.json``'s dict."""
    out = Path(out)
    config_path = out / "config.json"
    if config_path.exists():
        existing = ImageRunConfig.from_dict(json.loads(config_path.read_text()))
        if not resume and (out / "checkpoint.pt").exists():
            raise ConfigError(
                "run folder already holds a run",
                fix="choose another --out, delete it, or pass --resume",
            )
        if resume and existing != config:
            raise ConfigError(
                f"cannot resume: the run was made with a different config ({existing.label()})",
                fix="pass the same options as the first time, or choose another --out",
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, config.to_json() + "\n")
    train, test = load_data(config)
    num_classes = int(train.labels.max()) + 1
    model = build_model(config, num_classes=num_classes)
    options = dict(
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=progress,
        checkpoint=out / "checkpoint.pt",
        resume=resume,
        extra={"num_classes": num_classes},
    )
    tic = time.perf_counter()
    if config.task == "classify":
        history = fit_classifier(model, train, test, **options)
        key = "test_accuracy"
    else:
        history = fit_autoencoder(model, train, test, weighted=config.weighted, **options)
        key = "test_mse"
    metrics = {
        "label": config.label(),
        key: history[-1][key],
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": time.perf_counter() - tic,
        "history": history,
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def load_run(run: str | os.PathLike) -> tuple[ImageRunConfig, nn.Module, dict]:
    """``(config, model with trained weights in eval mode, metrics or {})`` of a run folder."""
    run = Path(run)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise CheckpointError(
            "not an image run folder (no config.json)",
            path=run,
            fix="pass the --out folder of `deep3dmm image train`",
        )
    try:
        config = ImageRunConfig.from_dict(json.loads(config_path.read_text()))
    except ConfigError:  # a ValueError too, but already a typed error
        raise
    except (ValueError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"unreadable config.json ({exc})", path=config_path) from exc
    state = load_checkpoint(run / "checkpoint.pt")
    model = build_model(config, num_classes=state.get("extra", {}).get("num_classes", 10))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            "checkpoint does not match config.json", path=run / "checkpoint.pt"
        ) from exc
    metrics_path = run / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise CheckpointError(f"unreadable metrics.json ({exc})", path=metrics_path) from exc
    return config, model.eval(), metrics


def summarize_runs(runs: list[str | os.PathLike]) -> list[dict]:
    """Group finished runs by :meth:`ImageRunConfig.label`; mean, std (n-1) and count.

    Returns:
        ``[{"label", "metric", "mean", "std", "n", "seeds", "seconds"}, ...]`` sorted by label.
    """
    groups: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    for run in runs:
        run = Path(run)
        metrics_path = run / "metrics.json"
        if not metrics_path.is_file():
            raise CheckpointError("run has no metrics.json (unfinished?)", path=run)
        config = ImageRunConfig.from_dict(json.loads((run / "config.json").read_text()))
        metrics = json.loads(metrics_path.read_text())
        key = "test_accuracy" if config.task == "classify" else "test_mse"
        groups.setdefault((config.label(), key), []).append(
            (config.seed, metrics[key], metrics["train_seconds"])
        )
    rows = []
    for (label, key), items in sorted(groups.items()):
        values = [v for _, v, _ in items]
        rows.append(
            {
                "label": label,
                "metric": key,
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values),
                "seeds": sorted(s for s, _, _ in items),
                "seconds": statistics.fmean(t for _, _, t in items),
            }
        )
    return rows
