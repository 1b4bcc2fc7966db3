"""The training loop: data + hierarchy + model -> a run directory with checkpoints and metrics.

Optimisation follows COMA / Neural3DMM: L1 loss on per-vertex normalised coordinates,
Adam (or SGD with momentum, as in COMA), learning rate decayed by ``lr_decay`` after
every epoch, the best checkpoint chosen by the validation error in millimetres.

Data path: when the normalised training split fits in memory (the usual case) it is
held as one tensor on the training device and each epoch draws a seeded permutation
(:func:`~deep3dmm.train.distributed.epoch_indices`); otherwise meshes stream from the
memory map through a ``DataLoader`` with a ``DistributedSampler``. Both give the same
batches, so the sampler state is just ``(seed, epoch)`` and a resumed run takes exactly
the steps an uninterrupted run would.

A ``variational`` model (a VAE) adds ``beta_e * KL`` to the L1 loss (``train_loss`` in
metrics.csv is the sum; validation decodes the mean code, so ``val_mm`` is its
reconstruction error); its reparameterisation noise comes from a generator seeded per
epoch from the checkpointed ``(seed, epoch)`` and the rank, so resuming stays exact.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; every rank trains
on its shard, rank 0 validates, logs and writes.
"""

from __future__ import annotations

import csv
import gc
import io
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deep3dmm.atomic import atomic_write_text
from deep3dmm.data import Normalization, PreparedDataset, RegisteredMeshDataset, Split, make_split
from deep3dmm.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    TopologyMismatchError,
)
from deep3dmm.metrics import vertex_errors
from deep3dmm.train.checkpoint import (
    RunFiles,
    capture_rng_state,
    check_compatible,
    clean_stale_temporaries,
    keep_previous,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from deep3dmm.train.config import RunConfig, load_config, save_config
from deep3dmm.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    epoch_indices,
    init_distributed,
)
from deep3dmm.train.losses import l1_loss
from deep3dmm.train.pca_run import fit_pca_run, is_pca

__all__ = [
    "METRIC_COLUMNS",
    "NonFiniteLossError",
    "RunSetup",
    "TrainResult",
    "Trainer",
    "build_model",
    "open_dataset",
    "prepare_run",
    "train",
]

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_mm", "lr", "seconds", "meshes_per_s")


@dataclass
class RunSetup:
    """Everything a run trains on, as written to (or read from) its directory.

    Attributes:
        config: the resolved configuration (model options spelled out).
        dataset: the prepared dataset.
        split: train / val / test rows.
        normalization: statistics of the train rows.
        hierarchy: the mesh hierarchy (``deep3dmm.mesh.MeshHierarchy``).
    """

    config: RunConfig
    dataset: PreparedDataset
    split: Split
    normalization: Normalization
    hierarchy: object


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished training run."""

    run_dir: Path
    epochs: int
    best_epoch: int
    best_val_mm: float
    train_seconds: float
    num_parameters: int
    stopped_early: bool = False


def open_dataset(config: RunConfig) -> PreparedDataset:
    """Open the configured prepared dataset (empty path: the default anny faces dataset)."""
    if config.data.path:
        return PreparedDataset(config.data.path)
    from deep3dmm.data.generate import default_faces_dataset

    return PreparedDataset(default_faces_dataset())


def build_model(config: RunConfig, hierarchy) -> tuple[nn.Module, RunConfig]:
    """Build the model of ``config.model`` on ``hierarchy``, seeded with ``train.seed``.

    Returns:
        the model and the configuration (unchanged: ``config.model`` spells out every option).
    """
    from deep3dmm.nn import build_model as build

    torch.manual_seed(config.train.seed)
    return build(hierarchy, config.model), config


def use_hierarchy(config: RunConfig, hierarchy, template):
    """The hierarchy of a run: ``hierarchy`` (a file or object) if given, else built from config.

    A given hierarchy must be built on ``template`` and agree with ``config.hierarchy``
    when that is not the default; the returned configuration records its parameters.

    Raises:
        TopologyMismatchError: the hierarchy was built on another template.
        ConfigError: its parameters contradict ``config.hierarchy``.
    """
    from deep3dmm.mesh import HierarchyConfig, MeshHierarchy

    if hierarchy is None:
        return MeshHierarchy.cached(template, config.hierarchy), config
    source = hierarchy if isinstance(hierarchy, (str, os.PathLike)) else None
    if source is not None:
        hierarchy = MeshHierarchy.load(source)
    level0 = (np.asarray(hierarchy.vertices[0]), np.asarray(hierarchy.faces[0]))
    if level0[0].shape != template.vertices.shape or not (
        np.allclose(level0[0], template.vertices, atol=1e-6)
        and np.array_equal(level0[1], template.faces)
    ):
        raise TopologyMismatchError(
            f"the hierarchy was built on a mesh of {len(level0[0])} vertices that is not the "
            f"dataset's template ({template.num_vertices} vertices)",
            path=source,
            fix="build it from the dataset's template.ply with `deep3dmm hierarchy`",
        )
    if config.hierarchy not in (HierarchyConfig(), hierarchy.config):
        raise ConfigError(
            f"the hierarchy file has {hierarchy.config}, the configuration {config.hierarchy}",
            path=source,
            fix="give either a hierarchy file or hierarchy options, not both",
        )
    return hierarchy, replace(config, hierarchy=hierarchy.config)


def _load_hierarchy(path: Path):
    from deep3dmm.mesh import MeshHierarchy

    return MeshHierarchy.load(path)


def prepare_run(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    context: DistributedContext | None = None,
    hierarchy=None,
) -> RunSetup:
    """Create (rank 0) or read the run's data files: config, split, normalisation, hierarchy.

    A new run resolves the dataset path, computes the split and the train-split
    normalisation, builds (or reuses from the cache) the hierarchy and writes all of
    them to ``run_dir``. Other ranks, and a resumed run, read them back from there.
    ``hierarchy`` (a ``MeshHierarchy`` or its ``.npz`` file) replaces the built one
    (see :func:`use_hierarchy`).

    Raises:
        ConfigError: a new run into a folder that already holds a run (use ``resume``).
    """
    context = context or DistributedContext()
    files = RunFiles(Path(run_dir))
    fresh = not (resume and files.config.is_file())
    if fresh and context.is_main:
        if files.config.is_file():
            raise ConfigError(
                "this folder already holds a run",
                path=files.root,
                fix="add --resume to continue it, or choose another --out",
            )
        dataset = open_dataset(config)
        config = replace(config, data=replace(config.data, path=str(dataset.path.resolve())))
        split = make_split(
            dataset,
            config.data.protocol,
            holdout=config.data.holdout or None,
            val_fraction=config.data.val_fraction,
            test_fraction=config.data.test_fraction,
            seed=config.train.seed,
        )
        for part in ("train", "val"):
            if len(split[part]) == 0:
                raise ConfigError(
                    f"the {config.data.protocol!r} split of {len(dataset)} meshes leaves no "
                    f"{part} meshes",
                    path=dataset.path,
                    fix="use more data, another --split protocol or larger fractions",
                )
        normalization = Normalization.fit(dataset.vertices, indices=split.train)
        hierarchy, config = use_hierarchy(config, hierarchy, dataset.template)
        build_model(config, hierarchy)  # check the model options before writing anything
        files.root.mkdir(parents=True, exist_ok=True)
        split.save(files.split)
        normalization.save(files.normalization)
        hierarchy.save(files.hierarchy)
        save_config(config, files.config)
    _barrier(context)
    if not fresh or not context.is_main:
        if not files.config.is_file():
            raise CheckpointError(
                "no config.toml: not a run folder", path=files.root, fix="check --out"
            )
        stored = load_config(files.config)
        config = replace(stored, train=config.train) if resume else stored
        if config != stored and context.is_main:  # resumed with a new cap / patience: record it
            save_config(config, files.config)
        dataset = open_dataset(config)
        split = Split.load(files.split)
        split.check(len(dataset), content_hash=dataset.meta.get("content_hash"))
        normalization = Normalization.load(files.normalization)
        hierarchy = _load_hierarchy(files.hierarchy)
    return RunSetup(config, dataset, split, normalization, hierarchy)


def _barrier(context: DistributedContext) -> None:
    if context.distributed:
        torch.distributed.barrier()


class Trainer:
    """Train one run: epochs of L1 steps, validation in mm, checkpoints and metrics.

    Args:
        setup: the run's data, split, normalisation, hierarchy and configuration.
        run_dir: the run folder (checkpoints, metrics).
        context: distributed context (single process by default).
        quiet: no progress bars and no per-epoch lines.
        loss_fn: training loss on normalised coordinates (default :func:`l1_loss`).
    """

    def __init__(
        self,
        setup: RunSetup,
        run_dir: str | os.PathLike,
        *,
        context: DistributedContext | None = None,
        quiet: bool = False,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ):
        self.setup = setup
        self.config = setup.config
        self.files = RunFiles(Path(run_dir))
        self.context = context or DistributedContext()
        self.device = self.context.device
        self.quiet = quiet
        self.loss_fn = loss_fn or l1_loss
        self.variational = bool(getattr(self.config.model, "variational", False))
        self.last_kl = 0.0  # mean KL per mesh of the last epoch (variational)
        model, _ = build_model(self.config, setup.hierarchy)
        self.model = model.to(self.device)
        self.num_parameters = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(
            self.optimizer, gamma=self.config.optim.lr_decay
        )
        self.epoch = 0  # completed epochs
        self.history: list[dict] = []
        self.best = {"epoch": 0, "val_mm": math.inf}
        self.stall = {"epoch": 0, "val_mm": math.inf}  # last improvement by min_delta
        self.train_seconds = 0.0
        dataset = setup.dataset
        self.to_mm = dataset.to_millimetres
        self.std = torch.as_tensor(setup.normalization.std, device=self.device)  # (V, 3)
        self._train_source = RegisteredMeshDataset(
            dataset, "train", split_spec=setup.split, normalization=setup.normalization
        )
        self._val_source = RegisteredMeshDataset(
            dataset, "val", split_spec=setup.split, normalization=setup.normalization
        )
        nbytes = len(self._train_source) * dataset.template.num_vertices * 3 * 4
        mode = self.config.train.in_memory
        self.in_memory = mode == "yes" or (
            mode == "auto" and nbytes <= self.config.train.memory_limit_mb * 2**20
        )
        self.train_tensor = (
            self._train_source.tensor().to(self.device) if self.in_memory else None
        )  # (N_train, V, 3)
        self.ddp_model = self.model
        if self.context.distributed:
            # No buffer broadcast before every forward: the models' buffers are the
            # hierarchy's constant tables (spirals, D/U, Laplacians: 15 MB at 80k vertices)
            # and attention picks recomputed from the synchronised parameters in that forward.
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )

    def __repr__(self) -> str:
        return (
            f"Trainer(run={str(self.files.root)!r}, epoch={self.epoch}/"
            f"{self.config.train.epochs}, params={self.num_parameters}, "
            f"in_memory={self.in_memory}, world_size={self.context.world_size})"
        )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        if optim.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay
            )
        return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)

    # ------------------------------------------------------------------ checkpoints
    def _compat(self) -> dict:
        template = self.setup.dataset.template
        return {
            "num_vertices": template.num_vertices,
            "template_hash": template.hash,
            "hierarchy_hash": self.setup.hierarchy.hash,
            "dataset": str(self.setup.dataset.path),
            "unit": self.setup.dataset.unit,
        }

    def state(self, *, full: bool = True) -> dict:
        """The checkpoint dict (``full``: with optimiser, scheduler, RNG and sampler)."""
        state = {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "model_config": self.model.config,
            "data": self._compat(),
            "history": list(self.history),
            "best": dict(self.best),
            "stall": dict(self.stall),
            "train_seconds": self.train_seconds,
            "num_parameters": self.num_parameters,
        }
        if full:
            state.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng=capture_rng_state(),
                sampler={"seed": self.config.train.seed, "epoch": self.epoch},
            )
        return state

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load ``last.pt`` (or ``path``) and continue after its epoch; False when absent.

        A damaged ``last.pt`` is an error that names it (never a silent fresh start or a
        silent fallback); ``path`` (``--resume-from``) picks another full checkpoint, such as
        ``last.prev.pt``, the one written an epoch before.

        Raises:
            CheckpointError: the checkpoint is damaged, unsafe, or holds only the model.
        """
        explicit = path is not None
        path = Path(path) if explicit else self.files.last
        clean_stale_temporaries(self.files.checkpoints)
        if not path.is_file():
            if explicit:
                raise CheckpointError("checkpoint not found", path=path, fix="check --resume-from")
            return False
        try:
            state = load_checkpoint(path, map_location=self.device)
        except CheckpointError as exc:
            if explicit:
                raise
            previous = self.files.checkpoints / "last.prev.pt"
            raise CheckpointError(
                exc.message,
                path=path,
                fix=f"continue from the checkpoint before it with --resume-from {previous}"
                if previous.is_file()
                else "no earlier checkpoint is kept; start a new run",
            ) from exc
        template = self.setup.dataset.template
        check_compatible(
            state,
            num_vertices=template.num_vertices,
            template_hash=template.hash,
            path=path,
            data_path=self.setup.dataset.path,
        )
        if "optimizer" not in state:
            raise CheckpointError(
                "this checkpoint holds only the model (best.pt); resuming needs last.pt",
                path=path,
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.stall = dict(state.get("stall", self.best))
        self.train_seconds = float(state["train_seconds"])
        return True

    def _write_metrics(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.files.metrics, buffer.getvalue())

    # ------------------------------------------------------------------ epochs
    def _batches(self, epoch: int):
        """Yield this rank's training batches of one epoch, ``(b, V, 3)`` on the device."""
        batch_size = self.config.train.batch_size
        seed, rank, world = self.config.train.seed, self.context.rank, self.context.world_size
        if self.in_memory:
            order = epoch_indices(
                len(self.train_tensor), epoch=epoch, seed=seed, rank=rank, world_size=world
            ).to(self.device)
            for start in range(0, len(order), batch_size):
                yield self.train_tensor[order[start : start + batch_size]]
            return
        sampler = torch.utils.data.DistributedSampler(
            self._train_source, num_replicas=world, rank=rank, shuffle=True, seed=seed
        )
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            self._train_source,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.config.train.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)

    def _num_batches(self) -> int:
        per_rank = math.ceil(len(self._train_source) / self.context.world_size)
        return math.ceil(per_rank / self.config.train.batch_size)

    def _check_finite(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        """Stop every rank when the loss of any rank is NaN/inf (before the update)."""
        bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0], device=self.device)
        if all_reduce_sum(bad, self.context).item() > 0:
            self._diverged(f"epoch {epoch + 1}, step {step + 1}", "training loss", loss.item())

    def _diverged(self, where: str, what: str, value: float) -> None:
        kept = (
            f"{self.files.last} (epoch {self.epoch}) is kept"
            if self.files.last.is_file()
            else "no checkpoint had been written yet"
        )
        raise NonFiniteLossError(
            f"training stopped at {where}: the {what} is {value} (not finite); "
            f"the last good checkpoint {kept}",
            path=self.files.root,
            fix="lower the learning rate (--lr), check the data for outliers, then start a "
            "new run or continue with --resume",
        )

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over this rank's shard; returns (mean train loss, seconds)."""
        self.ddp_model.train()
        start = time.perf_counter()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss * b, b
        bar = tqdm(
            self._batches(epoch),
            total=self._num_batches(),
            desc=f"epoch {epoch + 1}/{self.config.train.epochs}",
            unit="batch",
            leave=False,
            disable=True
            if self.quiet or not self.context.is_main
            else None,  # None: off without a TTY
        )
        noise, beta, kl_sum = self._noise(epoch), self._kl_weight(epoch), 0.0
        for step, batch in enumerate(bar):
            if self.variational:
                prediction, kl = self.ddp_model(batch, generator=noise, return_kl=True)
                loss = self.loss_fn(prediction, batch) + beta * kl.mean()
                kl_sum += float(kl.detach().sum())
            else:
                prediction = self.ddp_model(batch)  # (b, V, 3)
                loss = self.loss_fn(prediction, batch)
            self._check_finite(loss, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total[0] += loss.detach().double() * len(batch)
            total[1] += len(batch)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        total = all_reduce_sum(total, self.context)
        self.last_kl = kl_sum / max(float(total[1]) / self.context.world_size, 1.0)
        return float(total[0] / total[1]), time.perf_counter() - start

    def _noise(self, epoch: int) -> torch.Generator | None:
        """The generator of this epoch's reparameterisation noise (variational runs).

        Seeded from ``(train.seed, epoch, rank)``, the state the checkpoint holds (``sampler``):
        a run resumed after epoch ``e`` draws the noise the uninterrupted run drew, and every
        rank draws its own. The global torch generator is not touched.
        """
        if not self.variational:
            return None
        seed = self.config.train.seed
        generator = torch.Generator(device=self.device)
        generator.manual_seed((seed * 1_000_003 + epoch) * 1009 + self.context.rank + 7)
        return generator

    def _kl_weight(self, epoch: int) -> float:
        """``beta`` ramped over ``kl_warmup`` epochs (:func:`deep3dmm.nn.kl_weight`)."""
        if not self.variational:
            return 0.0
        from deep3dmm.nn.variational import kl_weight

        return kl_weight(self.config.model.beta, self.config.model.kl_warmup, epoch)

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """Validation (L1 on normalised coordinates, mean per-vertex error in mm)."""
        self.model.eval()
        size = self.config.train.eval_batch_size
        loss_sum, mm_sum, count = 0.0, 0.0, 0
        loader = torch.utils.data.DataLoader(self._val_source, batch_size=size, shuffle=False)
        for batch in loader:
            batch = batch.to(self.device)  # (b, V, 3)
            prediction = self.model(batch)
            loss_sum += float(self.loss_fn(prediction, batch)) * len(batch)
            # De-normalised difference: (pred - x) * std, in the dataset unit -> mm.
            errors = vertex_errors(prediction, batch, std=self.std)  # (b, V)
            mm_sum += float(errors.mean(dim=1).sum()) * self.to_mm
            count += len(batch)
        return loss_sum / count, mm_sum / count

    def converged(self) -> bool:
        """Early stopping: no improvement (by ``min_delta``) for ``patience`` epochs.

        Rank 0 decides (it validates); every rank gets the answer.
        """
        patience = self.config.train.patience
        stop = patience > 0 and self.epoch - int(self.stall["epoch"]) >= patience
        flag = torch.tensor([1.0 if stop and self.context.is_main else 0.0], device=self.device)
        return bool(all_reduce_sum(flag, self.context).item() > 0)

    def _update_stall(self, val_mm: float) -> None:
        if val_mm < self.stall["val_mm"] * (1.0 - self.config.train.min_delta):
            self.stall = {"epoch": self.epoch, "val_mm": val_mm}

    def close(self) -> None:
        """Release the ``DistributedDataParallel`` wrapper while the process group is alive.

        The wrapper holds the process group (gloo's worker threads); the trainer can sit in
        reference cycles (frames kept by exceptions that libraries caught), so without this
        the wrapper is freed whenever the cyclic collector runs: possibly after
        ``destroy_process_group`` or during interpreter shutdown, where gloo's teardown can
        abort a run that succeeded. The plain model stays usable.
        """
        if self.ddp_model is not self.model:
            self.ddp_model = self.model
            gc.collect()

    def fit(self) -> TrainResult:
        """Train from the current epoch to ``train.epochs`` or until :meth:`converged`.

        Rank 0 validates and writes the checkpoints.
        """
        epochs = self.config.train.epochs
        n_train = len(self._train_source)
        if self.context.is_main and not self.quiet and self.epoch < epochs:
            logger.info(
                "training %s: %d train / %d val meshes, %d parameters, epochs %d-%d, "
                "batch %d x %d process(es), %s, %s",
                self.files.root,
                n_train,
                len(self._val_source),
                self.num_parameters,
                self.epoch + 1,
                epochs,
                self.config.train.batch_size,
                self.context.world_size,
                self.device,
                "in memory" if self.in_memory else "streaming",
            )
        for epoch in range(self.epoch, epochs):
            if self.converged():
                break
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, train_time = self.train_epoch(epoch)
            self.scheduler.step()
            self.epoch = epoch + 1
            if self.context.is_main:
                start = time.perf_counter()
                val_loss, val_mm = self.validate()
                if not math.isfinite(val_loss):
                    self.epoch = epoch
                    self._diverged(f"epoch {epoch + 1}", "validation loss", val_loss)
                seconds = train_time + time.perf_counter() - start
                self.train_seconds += seconds
                row = {
                    "epoch": self.epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_mm": val_mm,
                    "lr": lr,
                    "seconds": round(seconds, 4),
                    "meshes_per_s": round(n_train / train_time, 2),
                }
                self.history.append(row)
                improved = val_mm < self.best["val_mm"]
                self._update_stall(val_mm)
                if improved:
                    self.best = {"epoch": self.epoch, "val_mm": val_mm}
                    save_checkpoint(self.files.best, self.state(full=False))
                keep_previous(self.files.last, self.files.checkpoints / "last.prev.pt")
                save_checkpoint(self.files.last, self.state())
                self._write_metrics()
                if not self.quiet:
                    logger.info(
                        "epoch %d/%d  train %.4f  val %.4f  val %.3f mm  lr %.2e  %.1f s  "
                        "%.0f meshes/s%s%s",
                        self.epoch,
                        epochs,
                        train_loss,
                        val_loss,
                        val_mm,
                        lr,
                        seconds,
                        row["meshes_per_s"],
                        f"  kl {self.last_kl:.2f}" if self.variational else "",
                        "  *best" if improved else "",
                    )
            _barrier(self.context)
        stopped = self.converged()
        if stopped and self.context.is_main and not self.quiet:
            logger.info(
                "early stop after epoch %d: no improvement by %g since epoch %d (patience %d)",
                self.epoch, self.config.train.min_delta, self.stall["epoch"],
                self.config.train.patience,
            )  # fmt: skip
        return TrainResult(
            run_dir=self.files.root,
            epochs=self.epoch,
            best_epoch=int(self.best["epoch"]),
            best_val_mm=float(self.best["val_mm"]),
            train_seconds=self.train_seconds,
            num_parameters=self.num_parameters,
            stopped_early=stopped,
        )


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    resume_from: str | os.PathLike | None = None,
    quiet: bool = False,
    context: DistributedContext | None = None,
    hierarchy=None,
) -> TrainResult:
    """Train a run end to end (also under torchrun): prepare, resume if asked, fit, plot.

    Args:
        config: the run configuration (on ``resume``, only its ``[train]`` section is used;
            the rest is read from ``run_dir/config.toml``).
        run_dir: the run folder.
        resume: continue from ``run_dir/checkpoints/last.pt`` when it exists.
        resume_from: with ``resume``, continue from this checkpoint instead (e.g.
            ``last.prev.pt`` after a damaged ``last.pt``).
        quiet: no progress bars and no per-epoch lines.
        context: distributed context (default: detected from the torchrun environment).
        hierarchy: a ``MeshHierarchy`` or its ``.npz`` file (``deep3dmm hierarchy``) to train
            on instead of building one from ``config.hierarchy`` (new runs only).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept).
        ConfigError, DatasetError, CheckpointError: bad options, data or run folder.
    """
    context = context or init_distributed(config.train.device)
    setup = prepare_run(config, run_dir, resume=resume, context=context, hierarchy=hierarchy)
    if is_pca(setup.config):  # the linear 3DMM: closed form on rank 0, no epochs
        if context.is_main:
            from deep3dmm.viz.curves import plot_curves

            result = fit_pca_run(setup, run_dir, device=context.device, quiet=quiet)
            plot_curves([result.run_dir], RunFiles(result.run_dir).curves)
        _barrier(context)
        return result if context.is_main else fit_pca_run(setup, run_dir, device=context.device)
    trainer = Trainer(setup, run_dir, context=context, quiet=quiet)
    if resume and trainer.resume(resume_from):
        if context.is_main and not quiet:
            logger.info("resumed %s after epoch %d", trainer.files.last, trainer.epoch)
    if resume and trainer.epoch >= trainer.config.train.epochs and context.is_main:
        logger.info("run already finished %d epochs; nothing to train", trainer.epoch)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if context.is_main:
        from deep3dmm.viz.curves import plot_curves

        plot_curves([trainer.files.root], trainer.files.curves)
    _barrier(context)
    return result
