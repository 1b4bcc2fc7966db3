import pytest
import torch
from torch.utils.data import DistributedSampler

from deep3dmm.errors import ConfigError
from deep3dmm.train.distributed import epoch_indices, init_distributed, resolve_device


@pytest.mark.parametrize("n,world", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 4)])
@pytest.mark.parametrize("epoch", [0, 3])
def test_epoch_indices_match_distributed_sampler(n, world, epoch):
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=5)
        sampler.set_epoch(epoch)
        expected = list(sampler)
        got = epoch_indices(n, epoch=epoch, seed=5, rank=rank, world_size=world).tolist()
        assert got == expected


def test_shards_cover_every_index_once_per_epoch():
    shards = [epoch_indices(12, epoch=1, seed=0, rank=r, world_size=3) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(12))
    # Two ranks with batch b see the global batch of one process with batch 2b.
    single = epoch_indices(12, epoch=1, seed=0)
    two = [epoch_indices(12, epoch=1, seed=0, rank=r, world_size=2) for r in range(2)]
    assert sorted(torch.cat([two[0][:2], two[1][:2]]).tolist()) == sorted(single[:4].tolist())


def test_epochs_differ_and_repeat():
    a = epoch_indices(50, epoch=0, seed=1)
    assert not torch.equal(a, epoch_indices(50, epoch=1, seed=1))
    assert torch.equal(a, epoch_indices(50, epoch=0, seed=1))


def test_single_process_context(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = init_distributed("cpu")
    assert context.world_size == 1 and context.is_main and not context.distributed
    assert context.device == torch.device("cpu")


def test_cuda_request_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
