"""Training: run configuration, the trainer, checkpoints, distributed helpers, losses."""

from deep3dmm.train.checkpoint import (
    LoadedRun,
    RunFiles,
    check_compatible,
    load_checkpoint,
    load_run,
    save_checkpoint,
)
from deep3dmm.train.config import (
    DataConfig,
    HierarchyConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    load_config,
    save_config,
)
from deep3dmm.train.distributed import DistributedContext, epoch_indices, init_distributed
from deep3dmm.train.losses import l1_loss, vertex_errors
from deep3dmm.train.trainer import NonFiniteLossError, Trainer, TrainResult, prepare_run, train

__all__ = [
    "DataConfig",
    "DistributedContext",
    "HierarchyConfig",
    "LoadedRun",
    "ModelConfig",
    "NonFiniteLossError",
    "OptimConfig",
    "RunConfig",
    "RunFiles",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "check_compatible",
    "epoch_indices",
    "init_distributed",
    "l1_loss",
    "load_checkpoint",
    "load_config",
    "load_run",
    "prepare_run",
    "save_checkpoint",
    "save_config",
    "train",
    "vertex_errors",
]
