"""Multi-process training with ``torch.distributed``: environment detection and helpers.

``torchrun --nproc_per_node=N -m deep3dmm train ...`` starts N processes and sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_distributed` reads them and joins the process group (gloo on CPU,
nccl on CUDA). Without those variables everything runs in one process. Only
rank 0 logs, shows progress and writes files.

The per-epoch shard of each rank is :func:`epoch_indices`, identical to
``torch.utils.data.DistributedSampler`` (same permutation of ``seed + epoch``,
same padding, same striding), so the in-memory path and the DataLoader path
see the same meshes, and N processes with batch b see the same global batches
as one process with batch N*b.
"""

from __future__ import annotations

import datetime
import gc
import logging
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deep3dmm.errors import ConfigError

__all__ = [
    "DistributedContext",
    "init_distributed",
    "shutdown_distributed",
    "resolve_device",
    "epoch_indices",
    "all_reduce_sum",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 in a single process).
        local_rank: rank on this node (selects the CUDA device).
        world_size: number of processes.
        device: the torch device this process trains on.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        """True when running under torchrun with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that logs and writes files."""
        return self.rank == 0


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """Turn "auto" / "cpu" / "cuda" into a device ("auto": CUDA when available).

    Raises:
        ConfigError: "cuda" was asked for but no CUDA device is available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "--device cuda was requested but PyTorch sees no CUDA device",
                fix="use --device cpu (or auto), or install a CUDA build of PyTorch",
            )
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; expected auto, cpu or cuda")


def init_distributed(device: str = "auto") -> DistributedContext:
    """Detect torchrun's environment and join the process group when there is one.

    Args:
        device: "auto", "cpu" or "cuda"; the backend is nccl on CUDA, gloo on CPU.

    Returns:
        The :class:`DistributedContext` of this process.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = resolve_device(device, local_rank=local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
        )
        logger.debug("rank %d/%d joined the %s process group", rank, world_size, backend)
    return DistributedContext(
        rank=rank, local_rank=local_rank, world_size=world_size, device=torch_device
    )


def shutdown_distributed() -> None:
    """Leave the process group (no-op in a single process).

    Unreachable objects that still hold the group (a ``DistributedDataParallel`` in a
    reference cycle) are collected first, while the group and the interpreter are alive:
    freed later, during interpreter shutdown, gloo's teardown can abort the process.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def epoch_indices(
    n: int, *, epoch: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True
) -> torch.Tensor:
    """This rank's indices of one epoch, exactly as ``DistributedSampler`` orders them.

    The permutation comes from a generator seeded with ``seed + epoch``; it is padded
    (by repeating its head) to a multiple of ``world_size`` and rank ``r`` takes every
    ``world_size``-th index from ``r``. The sampler state is therefore just
    ``(seed, epoch)``.

    Shapes:
        returns ``(ceil(n / world_size),)`` int64.
    """
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.arange(n)
    per_rank = math.ceil(n / world_size)
    total = per_rank * world_size
    padding = total - n
    if padding:
        repeats = math.ceil(padding / n)
        order = torch.cat([order, order.repeat(repeats)[:padding]])
    return order[rank:total:world_size]


def all_reduce_sum(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum a tensor over all ranks (returns it unchanged in a single process)."""
    if context.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
