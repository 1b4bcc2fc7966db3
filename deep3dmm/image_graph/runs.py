"""Image-graph runs: one folder per trained model, built from a frozen config.

A run folder has the layout of a mesh run (:class:`deep3dmm.train.RunFiles`), written by the
same code: ``config.toml`` (an ``[image]`` table, :class:`ImageRunConfig`; read and written
like a mesh run's config), ``checkpoints/last.pt`` (:func:`deep3dmm.train.save_checkpoint`,
atomically after every epoch; resumable) and ``metrics.json`` (``RunFiles.summary``: history
and the final test metric). :func:`train_run` creates one, :func:`load_run` rebuilds the
model from it, and :func:`summarize_runs` groups runs that differ only in their seed.
Folders of the earlier layout (``config.json`` + ``checkpoint.pt``) are refused with a
:class:`~deep3dmm.errors.CheckpointError` that says so.
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

from deep3dmm import schema
from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import CheckpointError, ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits
from deep3dmm.image_graph.interconnect import ADJACENCY
from deep3dmm.image_graph.models import (
    GRAPH_METHODS,
    KEYPOINT_METHODS,
    KeypointGraphAutoencoder,
    KeypointGraphClassifier,
)
from deep3dmm.image_graph.shapes import load_shapes
from deep3dmm.image_graph.train import fit_autoencoder, fit_classifier
from deep3dmm.train.checkpoint import RunFiles, load_checkpoint
from deep3dmm.train.config import read_toml, write_toml

__all__ = ["ImageRunConfig", "load_data", "build_model", "train_run", "load_run", "summarize_runs"]

log = logging.getLogger(__name__)

TASKS = ("classify", "reconstruct")
MODELS = ("graph", "cnn")
DATASETS = ("digits", "shapes")
WINDOWED = ("maxpool", "regress")  # keypoint methods that read ``window``
ADJACENCIES = tuple(ADJACENCY)
# Options passed unchanged to KeypointGraphEncoder (size and widths are passed too, renamed).
GRAPH_OPTIONS = ("keypoints", "num_keypoints", "window", "graph", "hidden", "layers", "adjacency")
SECTION = "image"  # the table of config.toml
CONFIG_HEADER = "deep3dmm image-graph run configuration (deep3dmm image train)"

option = schema.option


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

    task: str = option("classify", "what the model learns", choices=TASKS, cli=False)
    model: str = option("graph", "keypoint-graph model or the CNN-only baseline", choices=MODELS)
    dataset: str = option("digits", "image dataset", choices=DATASETS)
    size: int = option(32, "image side (pixels)", minimum=1)
    keypoints: str = option("maxpool", "keypoint selector", choices=KEYPOINT_METHODS)
    graph: str = option("gcn", "graph layers", choices=GRAPH_METHODS)
    num_keypoints: int = option(16, "graph size (keypoints per image)", minimum=1)
    window: int = option(4, "NMS window / regression cell on the size/2 score map", minimum=1)
    hidden: int = option(64, "graph node channels", minimum=1)
    layers: int = option(2, "graph layers", minimum=1)
    widths: tuple[int, ...] = option((32, 64, 128), "CNN channels per stage", minimum=1)
    adjacency: str = option("inverse_distance", "adjacency builder", choices=ADJACENCIES)
    aux_weight: float = option(0.1, "weight of DiffPool's link + entropy loss", minimum=0)
    weighted: bool = option(False, "reconstruct with the confidence-weighted MSE")
    epochs: int = option(8, "training epochs", minimum=1)
    lr: float = option(3e-3, "Adam learning rate (cosine-annealed)")
    batch_size: int = option(64, "mini-batch size", minimum=1)
    seed: int = option(0, "seed of the initialisation and the shuffles")

    def __post_init__(self):
        schema.check_fields(self)
        if self.model == "cnn" and self.task != "classify":
            raise ConfigError("the CNN-only baseline is a classifier", fix="use --task classify")
        if self.task == "reconstruct" and self.graph == "diffpool":
            raise ConfigError(
                "reconstruct needs node positions; diffpool clusters have none",
                fix="use --graph gcn or gat",
            )
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

    def to_dict(self) -> dict:
        """The options as plain TOML values (the ``[image]`` table)."""
        return schema.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict, *, path: str | os.PathLike | None = None) -> ImageRunConfig:
        """Rebuild from :meth:`to_dict`'s dict, strictly typed (unknown keys are an error)."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown image run config keys {unknown}", path=path)
        return schema.from_dict(cls, data, section=SECTION, path=path)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``config.toml`` (an ``[image]`` table) atomically."""
        write_toml(path, {SECTION: self.to_dict()}, header=CONFIG_HEADER)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImageRunConfig:
        """Read the ``[image]`` table of a ``config.toml``.

        Raises:
            ConfigError: missing, invalid TOML, no ``[image]`` table (a mesh run), or bad options.
        """
        tables = read_toml(path)
        if set(tables) != {SECTION}:
            raise ConfigError(
                f"not an image-graph run config (tables {sorted(tables)}, expected [image])",
                path=path,
                fix="pass a folder written by `deep3dmm image train`",
            )
        return cls.from_dict(tables[SECTION], path=path)

    def label(self) -> str:
        """A short description without the seed (to group seeds)."""
        if self.model == "cnn":
            return f"{self.task} cnn {self.dataset}{self.size}"
        extra = " weighted" if self.weighted else ""
        return (
            f"{self.task} {self.keypoints}+{self.graph} n={self.num_keypoints} "
            f"{self.dataset}{self.size}{extra}"
        )


def _refuse_old_layout(files: RunFiles) -> None:
    """Folders of the earlier image layout (``config.json`` + ``checkpoint.pt``) are refused."""
    if (files.root / "config.json").is_file() and not files.config.exists():
        raise CheckpointError(
            "an image run folder of the earlier layout (config.json, checkpoint.pt); runs now "
            "share the mesh runs' layout (config.toml, checkpoints/last.pt)",
            path=files.root,
            fix="retrain it with `deep3dmm image train` (same options) into a new folder",
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
    options = {name: getattr(config, name) for name in GRAPH_OPTIONS}
    options.update(image_size=config.size, widths=config.widths[:2])
    if config.task == "classify":
        return KeypointGraphClassifier(num_classes, aux_weight=config.aux_weight, **options)
    return KeypointGraphAutoencoder(**options)


def train_run(
    config: ImageRunConfig, out: str | os.PathLike, *, progress: bool = True, resume: bool = False
) -> dict:
    """Train the config's model into the run folder ``out``; returns ``metrics.json``'s dict."""
    files = RunFiles(Path(out))
    _refuse_old_layout(files)
    if files.config.exists():
        existing = ImageRunConfig.load(files.config)
        if not resume and files.last.exists():
            raise ConfigError(
                "run folder already holds a run",
                fix="choose another --out, delete it, or pass --resume",
            )
        if resume and existing != config:
            raise ConfigError(
                f"cannot resume: the run was made with a different config ({existing.label()})",
                fix="pass the same options as the first time, or choose another --out",
            )
    files.checkpoints.mkdir(parents=True, exist_ok=True)
    config.save(files.config)
    train, test = load_data(config)
    num_classes = int(train.labels.max()) + 1
    model = build_model(config, num_classes=num_classes)
    options = dict(
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=progress,
        checkpoint=files.last,
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
    atomic_write_text(files.summary, json.dumps(metrics, indent=2) + "\n")
    return metrics


def load_run(run: str | os.PathLike) -> tuple[ImageRunConfig, nn.Module, dict]:
    """``(config, model with trained weights in eval mode, metrics or {})`` of a run folder."""
    files = RunFiles(Path(run))
    _refuse_old_layout(files)
    if not files.config.is_file():
        raise CheckpointError(
            "not an image run folder (no config.toml)",
            path=files.root,
            fix="pass the --out folder of `deep3dmm image train`",
        )
    config = ImageRunConfig.load(files.config)
    state = load_checkpoint(files.last)
    model = build_model(config, num_classes=state.get("extra", {}).get("num_classes", 10))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError("checkpoint does not match config.toml", path=files.last) from exc
    metrics_path = files.summary
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
        files = RunFiles(Path(run))
        _refuse_old_layout(files)
        if not files.summary.is_file():
            raise CheckpointError("run has no metrics.json (unfinished?)", path=files.root)
        config = ImageRunConfig.load(files.config)
        metrics = json.loads(files.summary.read_text())
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
