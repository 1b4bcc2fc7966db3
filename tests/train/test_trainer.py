import csv
import math

import numpy as np
import pytest
import torch

from deep3dmm.cli import main
from deep3dmm.data import Normalization, PreparedDataset, Split
from deep3dmm.errors import CheckpointError, ConfigError
from deep3dmm.train import load_checkpoint, load_config, load_run, save_config, train
from deep3dmm.train.checkpoint import RunFiles
from deep3dmm.train.trainer import METRIC_COLUMNS


def read_metrics(run):
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(spheres, tmp_path_factory, tiny_config):
    """One 3-epoch run shared by the read-only tests of this module."""
    run = tmp_path_factory.mktemp("runs") / "run"
    train(tiny_config(spheres.path, pool="attention", epochs=3), run, quiet=True)
    return run


def test_run_directory_layout(trained, spheres):
    files = RunFiles(trained)
    for path in (files.config, files.normalization, files.split, files.hierarchy, files.last,
                 files.best, files.metrics, files.curves):  # fmt: skip
        assert path.is_file(), path
    config = load_config(files.config)
    # Resolved: the dataset path is absolute and every model option is spelled out.
    assert config.data.path == str(spheres.path.resolve())
    assert config.model.conv == "spiral" and config.model.pool == "attention"
    assert config.model.latent == 4
    rows = read_metrics(trained)
    assert tuple(rows[0]) == METRIC_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    # Exponential decay of the learning rate per epoch.
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx([1e-3, 1e-3 * 0.99, 1e-3 * 0.99**2])
    last = load_checkpoint(files.last)
    best = load_checkpoint(files.best)
    assert last["epoch"] == 3 and last["sampler"] == {"seed": 0, "epoch": 3}
    assert {"optimizer", "scheduler", "rng"} <= set(last)
    val_mm = [float(r["val_mm"]) for r in rows]
    assert best["epoch"] == 1 + int(np.argmin(val_mm))
    assert last["best"]["val_mm"] == pytest.approx(min(val_mm))
    # The train split normalisation travels with the run.
    split = Split.load(files.split)
    expected = Normalization.fit(spheres.vertices, indices=split.train)
    np.testing.assert_allclose(Normalization.load(files.normalization).mean, expected.mean)
    assert not list(files.checkpoints.glob(".*"))  # no temporary files left behind


def test_val_mm_matches_dense_reference(trained, spheres):
    """The logged validation error equals a plain numpy computation with last.pt's model."""
    run = load_run(trained, checkpoint="last")
    rows = run.split.val
    raw = np.asarray(spheres.vertices[rows], dtype=np.float64)  # (n, V, 3) metres
    with torch.no_grad():
        normalised = torch.from_numpy(run.normalization.normalize(raw).astype(np.float32))
        out = run.model(normalised).double().numpy()
    recon = out * run.normalization.std + run.normalization.mean
    reference = np.sqrt(((recon - raw) ** 2).sum(-1)).mean() * 1000.0  # mm
    logged = float(read_metrics(trained)[-1]["val_mm"])
    assert logged == pytest.approx(reference, rel=1e-4)
    assert logged > 0


def test_resume_equals_uninterrupted(spheres, tmp_path, tiny_config):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(tiny_config(spheres.path, epochs=4), straight, quiet=True)
    train(tiny_config(spheres.path, epochs=2), resumed, quiet=True)
    assert load_checkpoint(RunFiles(resumed).last)["epoch"] == 2
    train(tiny_config(spheres.path, epochs=4), resumed, resume=True, quiet=True)
    a = load_checkpoint(RunFiles(straight).last)
    b = load_checkpoint(RunFiles(resumed).last)
    assert b["epoch"] == 4
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for key in ("train_loss", "val_loss", "val_mm", "lr"):
        assert [r[key] for r in read_metrics(straight)] == [r[key] for r in read_metrics(resumed)]
    # Training really moved the parameters away from the (seeded) initialisation.
    from deep3dmm.train.trainer import build_model

    initial, _ = build_model(load_config(RunFiles(straight).config), load_run(straight).hierarchy)
    assert any(not torch.equal(t, a["model"][k]) for k, t in initial.state_dict().items())


def test_streaming_path_equals_in_memory(spheres, tmp_path, tiny_config):
    memory, stream = tmp_path / "memory", tmp_path / "stream"
    train(tiny_config(spheres.path, epochs=2, in_memory="yes"), memory, quiet=True)
    train(tiny_config(spheres.path, epochs=2, in_memory="no"), stream, quiet=True)
    a = load_checkpoint(RunFiles(memory).last)["model"]
    b = load_checkpoint(RunFiles(stream).last)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)


def test_sgd_with_momentum(spheres, tmp_path, tiny_config):
    config = tiny_config(spheres.path, epochs=1).replace(
        optim={"optimizer": "sgd", "lr": 8e-3, "momentum": 0.9}
    )
    train(config, tmp_path / "sgd", quiet=True)
    state = load_checkpoint(RunFiles(tmp_path / "sgd").last)
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert "momentum_buffer" in next(iter(state["optimizer"]["state"].values()))


def test_new_run_refuses_existing_run(trained, spheres, tiny_config):
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        train(tiny_config(spheres.path), trained, quiet=True)


def test_nan_loss_stops_with_exit_2_and_keeps_checkpoint(
    spheres, tmp_path, monkeypatch, capsys, tiny_config
):
    import deep3dmm.train.trainer as trainer_module

    calls = {"n": 0}
    real = trainer_module.l1_loss

    def failing(prediction, target):
        calls["n"] += 1
        loss = real(prediction, target)
        return loss * math.nan if calls["n"] >= 8 else loss  # epoch 1: 5 steps + 1 val

    monkeypatch.setattr(trainer_module, "l1_loss", failing)
    config_path = tmp_path / "tiny.toml"
    save_config(tiny_config(spheres.path, epochs=3), config_path)
    run = tmp_path / "nan"
    assert main(["train", "--config", str(config_path), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "epoch 2, step 2" in err[0] and "not finite" in err[0]
    assert "last.pt (epoch 1) is kept" in err[0] and "Fix: lower the learning rate" in err[0]
    state = load_checkpoint(RunFiles(run).last)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert len(read_metrics(run)) == 1


def test_checkpoint_into_other_dataset_is_refused(trained, tmp_path, write_spheres):
    smaller = write_spheres(tmp_path / "small", count=12, subdivisions=1)  # 42 vertices
    with pytest.raises(CheckpointError, match="162 vertices, but the data has 42"):
        load_run(trained).open_dataset(smaller.path)
    # Same vertex count, another template (rotated sphere): caught by the template hash.
    original = PreparedDataset(load_config(RunFiles(trained).config).data.path)
    rotation = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    from deep3dmm.data import write_prepared_dataset
    from deep3dmm.mesh import Template

    template = Template(original.template.vertices @ rotation.T, original.template.faces)
    other = write_prepared_dataset(
        tmp_path / "rotated", template, np.asarray(original.vertices) @ rotation.T,
        original.index, source="spheres", unit="m",
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="trained on template .* different mesh"):
        load_run(trained).open_dataset(other.path)
    assert main(["evaluate", str(trained), "--data", str(other.path)]) == 2


def test_load_run_errors(tmp_path, trained):
    with pytest.raises(CheckpointError, match="not a complete run folder"):
        load_run(tmp_path)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint is unreadable"):
        load_checkpoint(broken)


def test_cli_resume_checks(trained, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "no run to resume" in capsys.readouterr().err
    assert main(["train", "--out", str(trained), "--resume", "--latent", "32"]) == 2
    err = capsys.readouterr().err
    assert "model.latent = 4, not 32" in err and "--resume continues" in err
