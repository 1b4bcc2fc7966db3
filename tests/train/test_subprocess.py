"""Training in real processes: SIGKILL mid-epoch then --resume, and torchrun DDP (gloo)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import deep3dmm
from deep3dmm.train import load_checkpoint, save_config
from deep3dmm.train.checkpoint import RunFiles

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(deep3dmm.__file__).parent / "nn" / "__init__.py").is_file(),
        reason="deep3dmm.nn is not there yet (the subprocesses need the real models)",
    ),
]


def environment(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", DEEP3DMM_CACHE=str(tmp_path / "cache"))
    env.pop("WORLD_SIZE", None)
    return env


def deep3dmm_cmd(*args):
    return [sys.executable, "-m", "deep3dmm", *map(str, args)]


def test_sigkill_mid_epoch_then_resume_finishes(tmp_path, write_spheres, tiny_config):
    data = write_spheres(tmp_path / "data", count=120)
    config = tmp_path / "run.toml"
    save_config(tiny_config(data.path, epochs=12, batch_size=2), config)
    run = tmp_path / "run"
    command = deep3dmm_cmd("train", "--config", config, "--out", run, "--quiet", "--no-eval")
    env = environment(tmp_path)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = RunFiles(run).last
    deadline = time.monotonic() + 120
    while not last.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert last.is_file(), process.communicate()
    first = load_checkpoint(last)["epoch"]
    # Kill during the next epoch: after the first checkpoint appeared, before the second.
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(last)["epoch"]  # still a complete, loadable checkpoint
    assert first <= killed_at < 12
    done = subprocess.run(
        [*command, "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    state = load_checkpoint(last)
    assert state["epoch"] == 12
    assert [row["epoch"] for row in state["history"]] == list(range(1, 13))
    assert (run / "metrics.csv").read_text().count("\n") == 13
    assert not [p for p in RunFiles(run).checkpoints.iterdir() if p.name.startswith(".")]


def test_two_processes_batch_4_equal_one_process_batch_8(tmp_path, spheres8, tiny_config):
    """torchrun, gloo: the first step of 2 x 4 meshes equals 1 x 8 meshes."""
    config = tmp_path / "run.toml"
    save_config(tiny_config(spheres8.path, epochs=1, pool="attention"), config)
    env = environment(tmp_path)
    common = ["--config", config, "--quiet", "--no-eval", "--device", "cpu"]
    single = subprocess.run(
        deep3dmm_cmd("train", *common, "--batch-size", 8, "--out", tmp_path / "one"),
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "-m", "deep3dmm"]  # fmt: skip
    double = subprocess.run(
        [*torchrun, "train", *map(str, common), "--batch-size", "4", "--out", tmp_path / "two"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert double.returncode == 0, double.stderr
    one = load_checkpoint(RunFiles(tmp_path / "one").last)
    two = load_checkpoint(RunFiles(tmp_path / "two").last)
    assert len(one["history"]) == len(two["history"]) == 1  # one step, one metrics row
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=0, atol=1e-5, msg=name)
    # One step over exactly the 8 train meshes, and it moved the seeded initialisation.
    from deep3dmm.data import Split
    from deep3dmm.mesh import MeshHierarchy
    from deep3dmm.train import load_config
    from deep3dmm.train.trainer import build_model

    assert len(Split.load(RunFiles(tmp_path / "one").split).train) == 8
    files = RunFiles(tmp_path / "one")
    initial, _ = build_model(load_config(files.config), MeshHierarchy.load(files.hierarchy))
    moved = [(one["model"][k] - t).abs().max().item() for k, t in initial.state_dict().items()]
    assert max(moved) > 1e-5


_RELEASE_SCRIPT = """
import gc, sys
import torch
from deep3dmm.train import load_config, train
from deep3dmm.train.distributed import init_distributed, shutdown_distributed

context = init_distributed("cpu")
gc.disable()  # only reference counting frees objects: nothing is left to a lucky collection
train(load_config(sys.argv[1]), sys.argv[2], quiet=True)
alive = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects())
print(f"rank {context.rank}: {alive} DistributedDataParallel alive", flush=True)
shutdown_distributed()
"""


def test_train_releases_the_ddp_wrapper_before_the_process_group_goes(
    tmp_path, spheres8, tiny_config
):
    """When ``train()`` returns, no DDP wrapper (which holds the gloo process group) is left.

    A wrapper kept alive by a reference cycle is freed whenever the cyclic collector runs,
    possibly after ``destroy_process_group`` or during interpreter shutdown, where tearing
    down gloo's worker threads can abort the process ("terminate called without an active
    exception") after a training run that succeeded.
    """
    config = tmp_path / "run.toml"
    save_config(tiny_config(spheres8.path, epochs=1, pool="attention"), config)
    script = tmp_path / "release.py"
    script.write_text(_RELEASE_SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", str(script), str(config), str(tmp_path / "run")]  # fmt: skip
    done = subprocess.run(
        torchrun, env=environment(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert sorted(line for line in done.stdout.splitlines() if line.startswith("rank")) == [
        "rank 0: 0 DistributedDataParallel alive",
        "rank 1: 0 DistributedDataParallel alive",
    ], done.stdout
