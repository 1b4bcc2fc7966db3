import json

import pytest
import torch

from deep3dmm.errors import CheckpointError, ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.runs import ImageRunConfig, load_run, summarize_runs, train_run
from deep3dmm.image_graph.shapes import load_shapes
from deep3dmm.image_graph.train import fit_classifier
from deep3dmm.train.checkpoint import RunFiles, load_checkpoint


@pytest.fixture(scope="module")
def shapes():
    return load_shapes(64, 32, 16)


def _cnn(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(1, 3, (4, 8), image_size=16)


def test_fit_classifier_is_seeded_and_records_history(shapes, tmp_path):
    train, test = shapes
    h1 = fit_classifier(_cnn(), train, test, epochs=2, batch_size=16, seed=1, progress=False)
    h2 = fit_classifier(_cnn(), train, test, epochs=2, batch_size=16, seed=1, progress=False)
    assert [r["epoch"] for r in h1] == [1, 2]
    assert set(h1[0]) == {"epoch", "loss", "test_accuracy", "seconds"}
    assert [r["loss"] for r in h1] == pytest.approx([r["loss"] for r in h2])
    assert 0 <= h1[-1]["test_accuracy"] <= 1


def test_resume_matches_uninterrupted_training(shapes, tmp_path, monkeypatch):
    train, test = shapes
    opts = dict(batch_size=16, seed=0, progress=False, epochs=3)
    full = fit_classifier(_cnn(), train, test, **opts)
    ckpt = tmp_path / "c.pt"

    import deep3dmm.image_graph.train as t

    calls = {"n": 0}
    real = t.save_checkpoint

    def interrupt_after_two(path, state):
        real(path, state)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(t, "save_checkpoint", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(_cnn(), train, test, checkpoint=ckpt, **opts)
    monkeypatch.setattr(t, "save_checkpoint", real)
    resumed = fit_classifier(_cnn(seed=5), train, test, checkpoint=ckpt, resume=True, **opts)
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in full], rel=1e-4)


def test_bad_checkpoints_and_options(tmp_path, shapes):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint is unreadable"):
        load_checkpoint(bad)
    with pytest.raises(ConfigError, match="need epochs >= 1"):
        fit_classifier(_cnn(), *shapes, epochs=0, progress=False)


def test_train_run_load_run_and_summary(tmp_path):
    cfg = dict(
        task="classify",
        dataset="shapes",
        size=16,
        widths=(4, 8, 8),
        hidden=8,
        num_keypoints=6,
        window=2,
        epochs=1,
        batch_size=64,
    )
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        metrics = train_run(ImageRunConfig(**cfg, seed=seed), out, progress=False)
        assert {"test_accuracy", "parameters", "train_seconds", "history"} <= set(metrics)
        assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == pytest.approx(
            metrics["test_accuracy"]
        )
        runs.append(out)
    config, model, metrics = load_run(runs[0])
    assert config.seed == 0 and not model.training
    rows = summarize_runs(runs)
    assert len(rows) == 1 and rows[0]["n"] == 2 and rows[0]["seeds"] == [0, 1]
    values = [json.loads((r / "metrics.json").read_text())["test_accuracy"] for r in runs]
    assert rows[0]["mean"] == pytest.approx(sum(values) / 2)
    with pytest.raises(ConfigError, match="already holds a run"):
        train_run(ImageRunConfig(**cfg), runs[0], progress=False)
    with pytest.raises(ConfigError, match="different config"):
        train_run(ImageRunConfig(**{**cfg, "hidden": 16}), runs[0], progress=False, resume=True)
    with pytest.raises(CheckpointError, match="no config.toml"):
        load_run(tmp_path)


def test_image_runs_share_the_mesh_run_layout(tmp_path):
    """config.toml ([image] table), checkpoints/last.pt (format 1), metrics.json."""
    from deep3dmm.train.config import read_toml

    cfg = ImageRunConfig(model="cnn", dataset="shapes", size=16, widths=(4, 8, 8), epochs=1, seed=3)
    train_run(cfg, tmp_path / "run", progress=False)
    files = RunFiles(tmp_path / "run")
    assert ImageRunConfig.load(files.config) == cfg
    assert read_toml(files.config)["image"]["widths"] == [4, 8, 8]
    state = load_checkpoint(files.last)
    assert state["format"] == 1 and state["epoch"] == 1
    assert json.loads(files.summary.read_text())["history"][0]["epoch"] == 1
    assert not (files.root / "config.json").exists()
    assert not (files.root / "checkpoint.pt").exists()


def test_other_run_folders_are_typed_errors(tmp_path):
    from deep3dmm.train.checkpoint import load_run as load_mesh_run

    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="earlier layout"):
        load_run(old)
    with pytest.raises(CheckpointError, match="earlier layout"):
        summarize_runs([old])
    with pytest.raises(CheckpointError, match="earlier layout"):
        train_run(ImageRunConfig(), old, progress=False)
    mesh = tmp_path / "mesh"
    mesh.mkdir()
    (mesh / "config.toml").write_text("[data]\npath = 'x'\n[train]\nepochs = 1\n")
    with pytest.raises(ConfigError, match="not an image-graph run config"):
        load_run(mesh)
    image = tmp_path / "image"
    image.mkdir()
    ImageRunConfig().save(image / "config.toml")
    with pytest.raises(CheckpointError, match="not a complete run folder"):
        load_mesh_run(image)


def test_config_validation():
    with pytest.raises(ConfigError, match="keypoints must be one of"):
        ImageRunConfig(keypoints="sift")
    with pytest.raises(ConfigError, match="baseline is a classifier"):
        ImageRunConfig(task="reconstruct", model="cnn")
    with pytest.raises(ConfigError, match="unknown image run config keys"):
        ImageRunConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match="hidden must be an integer"):
        ImageRunConfig.from_dict({"hidden": "8"})
