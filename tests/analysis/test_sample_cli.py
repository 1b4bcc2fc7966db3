"""End to end: train --variational, then sample / sample-quality; bad input exits 2."""

import json

import numpy as np
import pytest

from deep3dmm.cli import main
from deep3dmm.mesh.io import read_mesh
from deep3dmm.train import load_run


@pytest.fixture(scope="module")
def vae_run(blobs, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    args = ["train", "--data", str(blobs.path), "--split", "random", "--preset", "spiralnet++",
            "--factors", "4", "4", "--channels", "8", "8", "--latent", "4", "--variational",
            "--beta", "0.01", "--kl-warmup", "2", "--epochs", "2", "--batch-size", "4",
            "--device", "cpu", "--out", str(out), "--quiet", "--no-eval"]  # fmt: skip
    assert main(args) == 0
    return out


@pytest.mark.slow
def test_train_variational_then_sample(vae_run, blobs, tmp_path, capsys):
    run = load_run(vae_run)
    assert run.config.model.variational and run.config.model.beta == 0.01
    assert "variational = true" in (vae_run / "config.toml").read_text()
    out = tmp_path / "s"
    assert main(["sample", str(vae_run), "-n", "5", "--out", str(out), "--traverse", "3",
                 "--steps", "3", "--seed", "4", "--quiet"]) == 0  # fmt: skip
    assert "prior N(0, I)" in capsys.readouterr().out
    template = blobs.template
    for k in range(5):
        vertices, faces = read_mesh(out / f"sample_{k:03d}.ply")
        assert np.isfinite(vertices).all() and np.array_equal(faces, template.faces)
    assert (out / "samples.png").stat().st_size > 0 and (out / "traverse_3.png").is_file()
    report = json.loads((out / "samples.json").read_text())
    assert report["source"] == "prior" and report["finite"] and len(report["codes"]) == 5
    again = tmp_path / "again"  # the same seed gives the same meshes, byte for byte
    assert main(["sample", str(vae_run), "-n", "5", "--out", str(again), "--seed", "4",
                 "--quiet"]) == 0  # fmt: skip
    for k in range(5):
        name = f"sample_{k:03d}.ply"
        assert (out / name).read_bytes() == (again / name).read_bytes()
    # every analysis command works on a VAE run unchanged
    assert main(["evaluate", str(vae_run), "--quiet"]) == 0
    assert main(["interpolate", str(vae_run), "--from", "0", "--to", "5", "--steps", "3",
                 "--out", str(tmp_path / "i")]) == 0  # fmt: skip
    assert main(["transfer", str(vae_run), "--source-neutral", "0", "--source-deformed", "1",
                 "--target", "6", "--out", str(tmp_path / "t")]) == 0  # fmt: skip
    assert main(["export", str(vae_run), "--format", "torchscript",
                 "--out", str(tmp_path / "e")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["runs", "compare", str(vae_run)]) == 0
    assert "spiral + fixed VAE |" in capsys.readouterr().out  # channels differ from the preset
    assert main(["sample-quality", str(vae_run), "--split", "train", "--quiet"]) == 0
    quality = json.loads((vae_run / "eval" / "sample_quality_train.json").read_text())
    assert quality["unit"] == "mm" and 0 <= quality["nna"] <= 1 and quality["mmd"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        (["-n", "0"], "number of samples must be >= 1"),
        (["--temperature", "-1"], "temperature must be a finite number >= 0"),
        (["--traverse", "4"], "latent dimension 4 is out of range"),
    ],
)
def test_bad_sample_input_exits_2(vae_run, tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(["sample", str(vae_run), "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()  # nothing written


def test_sample_without_a_model_and_pca_variational_exit_2(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    assert main(["sample", str(tmp_path / "notarun"), "--out", str(tmp_path / "o")]) == 2
    assert "not a complete run folder" in capsys.readouterr().err
    assert main(["train", "--preset", "pca", "--variational", "--out", str(tmp_path / "p")]) == 2
    assert "--variational does not apply to --preset pca" in capsys.readouterr().err


@pytest.mark.slow
def test_sample_quality_script_measures_a_run(vae_run, tmp_path):
    """scripts/sample_quality.py: one row per temperature plus the training reference."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "sample_quality.py"
    spec = importlib.util.spec_from_file_location("_sample_quality_script", path)
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    if not (vae_run / "eval" / "test.json").is_file():
        assert main(["evaluate", str(vae_run), "--quiet"]) == 0
    rows = script.measure({"VAE": vae_run})
    assert [r["temperature"] for r in rows] == [*script.TEMPERATURES, None]
    assert all(0 <= r["nna"] <= 1 and r["mmd"] > 0 for r in rows)
    text = script.table(rows)
    assert text.count("\n") == len(rows) + 1 and "| VAE | 0.7 |" in text
