"""A run stopped anywhere and resumed equals the uninterrupted run, bit for bit, every preset.

The stop is simulated in-process: the loss function raises at a chosen step (a crash in the
middle of an epoch leaves the checkpoint of the last finished epoch, as a SIGKILL does; the
SIGKILL itself is in ``test_subprocess.py``). The resumed run then redoes the partial epoch.
"""

from dataclasses import replace

import pytest
import torch

from deep3dmm.nn import PRESETS
from deep3dmm.train import load_checkpoint, train
from deep3dmm.train.checkpoint import RunFiles
from deep3dmm.train.config import ModelConfig
from deep3dmm.train.losses import l1_loss
from deep3dmm.train.trainer import Trainer, prepare_run


class Killed(Exception):
    """Stands for the process dying."""


def preset_config(tiny_config, data, preset, epochs):
    config = tiny_config(data.path, epochs=epochs, batch_size=4)
    small = dict(K=2) if PRESETS[preset].conv == "cheb" else {}  # K=6 is slow on CPU
    return replace(
        config, model=ModelConfig.from_preset(preset, channels=(8, 8), latent=4, **small)
    )


def crash_at(config, run_dir, *, epoch: int, step: int):
    """Train ``config`` in ``run_dir`` and die at ``step`` of ``epoch`` (0-based)."""
    calls = {"n": 0}
    steps_per_epoch = None

    def loss(prediction, target):
        if prediction.requires_grad:  # a training step, not validation
            if calls["n"] == epoch * steps_per_epoch + step:
                raise Killed
            calls["n"] += 1
        return l1_loss(prediction, target)

    setup = prepare_run(config, run_dir)
    trainer = Trainer(setup, run_dir, quiet=True, loss_fn=loss)
    steps_per_epoch = trainer._num_batches()
    with pytest.raises(Killed):
        trainer.fit()


def assert_same_state(a, b):
    assert a["epoch"] == b["epoch"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert [r["val_mm"] for r in a["history"]] == [r["val_mm"] for r in b["history"]]


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_killed_mid_epoch_and_resumed_equals_straight(preset, spheres, tmp_path, tiny_config):
    """2 epochs straight == (1 epoch, crash at step 3 of epoch 2) + --resume, bit for bit.

    Before top-k indices were sorted within a row, the attention presets differed by ~3e-8
    after one resumed epoch (the summation order depended on the candidates kept in memory).
    """
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(preset_config(tiny_config, spheres, preset, 2), straight, quiet=True)
    crash_at(preset_config(tiny_config, spheres, preset, 2), killed, epoch=1, step=2)
    assert load_checkpoint(RunFiles(killed).last)["epoch"] == 1  # epoch 2 never finished
    train(preset_config(tiny_config, spheres, preset, 2), killed, resume=True, quiet=True)
    reference = load_checkpoint(RunFiles(straight).last)
    assert_same_state(reference, load_checkpoint(RunFiles(killed).last))


@pytest.mark.slow
def test_approximate_search_killed_mid_epoch_and_resumed_equals_straight(
    spheres, tmp_path, tiny_config
):
    """The same with the clustered (approximate) top-k search, which keeps state between
    steps (a search every 16th call, candidates, key clusters): it is saved with the model,
    so the resumed run takes the uninterrupted run's steps (it diverged before)."""

    def config():
        base = preset_config(tiny_config, spheres, "deep3dmm-spiral", 3)
        return replace(base, model=replace(base.model, topk_search="approximate"))

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(config(), straight, quiet=True)
    crash_at(config(), killed, epoch=2, step=1)
    assert load_checkpoint(RunFiles(killed).last)["epoch"] == 2
    train(config(), killed, resume=True, quiet=True)
    reference = load_checkpoint(RunFiles(straight).last)
    assert any(".search_counters" in name for name in reference["model"])
    assert_same_state(reference, load_checkpoint(RunFiles(killed).last))


def test_damaged_last_checkpoint_is_named_and_never_skipped_silently(
    spheres, tmp_path, tiny_config, capsys
):
    """A truncated last.pt stops --resume with its name; --resume-from last.prev.pt continues
    from the epoch before and still ends exactly where the uninterrupted run ends."""
    from deep3dmm.cli import main
    from deep3dmm.train import save_config

    straight, run = tmp_path / "straight", tmp_path / "run"
    train(tiny_config(spheres.path, epochs=3, pool="attention"), straight, quiet=True)
    train(tiny_config(spheres.path, epochs=2, pool="attention"), run, quiet=True)
    files = RunFiles(run)
    assert load_checkpoint(files.checkpoints / "last.prev.pt")["epoch"] == 1
    files.last.write_bytes(files.last.read_bytes()[:1000])  # truncated by a crash or a copy
    save_config(tiny_config(spheres.path, epochs=3, pool="attention"), tmp_path / "c.toml")
    command = ["train", "--config", str(tmp_path / "c.toml"), "--out", str(run), "--resume",
               "--quiet", "--no-eval"]  # fmt: skip
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(files.last) in err and "unreadable" in err
    assert f"--resume-from {files.checkpoints / 'last.prev.pt'}" in err
    assert main([*command, "--resume-from", str(files.checkpoints / "last.prev.pt")]) == 0
    assert_same_state(load_checkpoint(RunFiles(straight).last), load_checkpoint(files.last))


@pytest.mark.slow
def test_variational_killed_and_resumed_equals_straight(spheres, tmp_path, tiny_config):
    """A VAE run (noise drawn every step, KL warm-up) resumed mid-epoch is bit-identical."""

    def config():
        base = preset_config(tiny_config, spheres, "spiralnet++", 3)
        return replace(base, model=base.model.replace(variational=True, beta=0.1, kl_warmup=2))

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(config(), straight, quiet=True)
    crash_at(config(), killed, epoch=1, step=2)
    torch.manual_seed(1234)  # the noise does not depend on the global generator
    train(config(), killed, resume=True, quiet=True)
    reference = load_checkpoint(RunFiles(straight).last)
    assert_same_state(reference, load_checkpoint(RunFiles(killed).last))
    assert "to_logvar.weight" in reference["model"] and reference["model_config"]["variational"]
