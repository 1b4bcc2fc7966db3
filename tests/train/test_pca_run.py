"""``deep3dmm train --preset pca``: an ordinary run folder, checked against numpy, and its CLI."""

import json

import numpy as np
import pytest

from deep3dmm.cli import main
from deep3dmm.data import Split
from deep3dmm.errors import ConfigError
from deep3dmm.train import load_checkpoint, load_config, load_run
from deep3dmm.train.checkpoint import RunFiles
from deep3dmm.train.config import ModelConfig


@pytest.fixture(scope="module")
def pca_run(spheres, tmp_path_factory):
    run = tmp_path_factory.mktemp("pca") / "run"
    code = main(["train", "--data", str(spheres.path), "--preset", "pca", "--latent", "3",
                 "--split", "random", "--out", str(run), "--quiet", "--device", "cpu"])  # fmt: skip
    assert code == 0
    return run


def test_pca_run_equals_numpy_svd(pca_run, spheres):
    """Test reconstructions and the stored test error equal an independent numpy PCA."""
    split = Split.load(RunFiles(pca_run).split)
    vertices = np.asarray(spheres.vertices, dtype=np.float64)  # (N, V, 3) metres
    train = vertices[split.train].reshape(len(split.train), -1)
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    basis = vt[:3]  # (3, 3V)
    test = vertices[split.test].reshape(len(split.test), -1)
    expected = (mean + (test - mean) @ basis.T @ basis).reshape(-1, vertices.shape[1], 3)
    error_mm = np.linalg.norm(expected - vertices[split.test], axis=-1).mean() * 1000.0
    from deep3dmm.analysis.latent import reconstruct

    run = load_run(pca_run)
    got = reconstruct(run, vertices[split.test])
    np.testing.assert_allclose(got, expected, atol=1e-6)  # metres; float32 model
    stored = json.loads((RunFiles(pca_run).eval / "test.json").read_text())
    assert stored["num_meshes"] == len(split.test)
    assert stored["mean_mm"] == pytest.approx(error_mm, rel=1e-4)
    assert error_mm > 0.01  # the spheres' bumps are not a 3-dimensional linear space


def test_pca_run_folder_is_ordinary(pca_run):
    files = RunFiles(pca_run)
    for path in (files.config, files.normalization, files.split, files.hierarchy, files.last,
                 files.best, files.metrics, files.curves):  # fmt: skip
        assert path.is_file(), path
    config = load_config(files.config)
    assert config.model.preset == "pca" and config.model.latent == 3
    assert "conv" not in config.model.to_dict() and "pool" not in config.model.to_dict()
    state = load_checkpoint(files.last)
    assert state["epoch"] == 1 and state["model_config"]["kind"] == "pca"
    assert state["fit"]["method"] == "exact" and state["num_parameters"] == 4 * 162 * 3
    assert set(state["model"]) == {"mean", "scale", "components", "variance"}


def test_pca_resume_is_a_no_op_and_compare_lists_it(pca_run, capsys):
    before = load_checkpoint(RunFiles(pca_run).last)
    assert main(["train", "--out", str(pca_run), "--resume", "--quiet", "--no-eval"]) == 0
    after = load_checkpoint(RunFiles(pca_run).last)
    assert after["train_seconds"] == before["train_seconds"]
    capsys.readouterr()
    assert main(["runs", "compare", str(pca_run)]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert "| pca | - | - | 3 |" in row


def test_pca_with_options_that_do_not_apply_exits_2(spheres, tmp_path, capsys):
    code = main(["train", "--data", str(spheres.path), "--preset", "pca", "--latent", "3",
                 "--conv", "spiral", "--pool", "fixed", "--epochs", "3", "--lr", "0.1",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "options --conv, --pool, --lr, --epochs do not apply to --preset pca" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="model option.s. conv, K do not apply to preset 'pca'"):
        ModelConfig.from_preset("pca", latent=4, conv="spiral", K=3)
    code = main(["train", "--data", str(spheres.path), "--kind", "pca", "--epochs", "3",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2 and "option --epochs does not apply" in capsys.readouterr().err


def test_pca_with_too_few_training_meshes(spheres8, tmp_path, capsys):
    code = main(["train", "--data", str(spheres8.path), "--preset", "pca", "--latent", "9",
                 "--split", "random", "--out", str(tmp_path / "run"), "--quiet"])  # fmt: skip
    assert code == 2
    assert "needs at least 9 training meshes; the train split has 8" in capsys.readouterr().err
