"""Early stopping: patience on the validation error, recorded in the config, resume-safe."""

import csv

from deep3dmm.cli import main
from deep3dmm.train import load_checkpoint, load_config, train
from deep3dmm.train.checkpoint import RunFiles


def epochs_logged(run):
    with open(run / "metrics.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_patience_stops_and_is_recorded(spheres, tmp_path, tiny_config):
    # min_delta 0.9: only the first epoch counts as an improvement, so the run stops after
    # 1 + patience epochs, well before the cap of 10.
    config = tiny_config(spheres.path, epochs=10, patience=2, min_delta=0.9)
    result = train(config, tmp_path / "run", quiet=True)
    assert result.stopped_early and result.epochs == 3
    assert epochs_logged(tmp_path / "run") == [1, 2, 3]
    stored = load_config(RunFiles(tmp_path / "run").config)
    assert (stored.train.patience, stored.train.min_delta, stored.train.epochs) == (2, 0.9, 10)
    assert load_checkpoint(RunFiles(tmp_path / "run").last)["stall"]["epoch"] == 1


def test_patience_off_trains_the_cap_and_resume_can_add_it(spheres, tmp_path, tiny_config):
    run = tmp_path / "run"
    result = train(tiny_config(spheres.path, epochs=3, min_delta=0.9), run, quiet=True)
    assert not result.stopped_early and result.epochs == 3
    # Resuming with patience 2 and a higher cap: the stored stall epoch (1) is 2 epochs back,
    # so the run is already converged and trains nothing more.
    assert main(["train", "--out", str(run), "--resume", "--epochs", "10", "--patience", "2",
                 "--quiet", "--no-eval"]) == 0  # fmt: skip
    assert epochs_logged(run) == [1, 2, 3]
    assert load_config(RunFiles(run).config).train.patience == 2
