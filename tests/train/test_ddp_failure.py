"""DDP: an exception on one rank ends every rank promptly (torchrun, 2 gloo ranks)."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deep3dmm.train import load_checkpoint
from deep3dmm.train.checkpoint import RunFiles

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import tiny_config
    from deep3dmm.errors import Deep3DMMError
    from deep3dmm.train.distributed import init_distributed, shutdown_distributed
    from deep3dmm.train.losses import l1_loss
    from deep3dmm.train.trainer import Trainer, prepare_run

    context = init_distributed("cpu")
    calls = {{"n": 0}}

    def loss(prediction, target):
        if prediction.requires_grad:
            calls["n"] += 1
            if context.rank == 1 and calls["n"] == 3:  # rank 1 fails in epoch 1
                raise Deep3DMMError("rank 1 failed on purpose")
        return l1_loss(prediction, target)

    try:
        config = tiny_config({data!r}, epochs=50, batch_size=2)
        setup = prepare_run(config, {run!r}, context=context)
        Trainer(setup, {run!r}, context=context, quiet=True, loss_fn=loss).fit()
    finally:
        shutdown_distributed()
    """
)


def test_one_failing_rank_ends_all_ranks(tmp_path, write_spheres):
    data = write_spheres(tmp_path / "data", count=40)
    run = tmp_path / "run"
    script = tmp_path / "worker.py"
    tests = str(Path(__file__).resolve().parents[1])
    script.write_text(WORKER.format(tests=tests, data=str(data.path), run=str(run)))
    env = dict(os.environ, OMP_NUM_THREADS="1", DEEP3DMM_CACHE=str(tmp_path / "cache"))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    seconds = time.monotonic() - start
    assert done.returncode != 0
    assert "rank 1 failed on purpose" in done.stdout + done.stderr
    # Far from the 30-minute collective timeout and from the 50 epochs rank 0 was asked for.
    assert seconds < 120, seconds
    last = RunFiles(run).last
    assert not last.is_file() or load_checkpoint(last)["epoch"] < 50
