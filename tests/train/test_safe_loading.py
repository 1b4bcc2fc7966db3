"""Checkpoints are loaded weights-only: a crafted file is refused before any of it runs."""

import pytest
import torch

from deep3dmm.cli import main
from deep3dmm.errors import CheckpointError
from deep3dmm.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, safe_torch_load


class Payload:
    """Unpickling this object creates ``marker`` (stands for any code an attacker runs)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted(path, marker, **state):
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}, "hook": Payload(marker), **state}, path)
    return path


def test_pickled_callable_is_refused_and_never_runs(tmp_path):
    path = crafted(tmp_path / "evil.pt", tmp_path / "ran")
    with pytest.raises(CheckpointError, match="refused to load.*could run code"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused to load"):
        safe_torch_load(path)
    assert not (tmp_path / "ran").exists()


def test_image_checkpoint_is_loaded_weights_only(tmp_path):
    from deep3dmm.image_graph.runs import ImageRunConfig, load_run

    (tmp_path / "checkpoints").mkdir()
    path = crafted(tmp_path / "checkpoints" / "last.pt", tmp_path / "ran")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    ImageRunConfig().save(tmp_path / "config.toml")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_run(tmp_path)
    assert not (tmp_path / "ran").exists()


def test_cli_refuses_a_crafted_run_in_one_line(spheres, tmp_path, capsys, tiny_config):
    """``evaluate`` on a run folder whose best.pt was replaced by a crafted file."""
    from deep3dmm.train import train

    run = tmp_path / "run"
    train(tiny_config(spheres.path, epochs=1), run, quiet=True)
    crafted(run / "checkpoints" / "best.pt", tmp_path / "ran")
    assert main(["evaluate", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refused to load" in err
    assert not (tmp_path / "ran").exists()
