"""``deep3dmm export`` on a trained run: the folder, the docs snippet, bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from deep3dmm.analysis.latent import decode as torch_decode
from deep3dmm.cli import main
from deep3dmm.export import load
from deep3dmm.train import load_run

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"


@pytest.fixture(scope="module")
def exported(trained_run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "exported"
    assert main(["export", str(trained_run_dir), "--format", "onnx", "--out", str(out)]) == 0
    return out


def _snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    snippet = next(b for b in blocks if "onnxruntime" in b and "mesh_mm" in b)
    assert len(snippet.strip().splitlines()) <= 10
    return snippet


def test_folder_is_self_describing(exported, trained_run_dir):
    meta = json.loads((exported / "model.json").read_text())
    run = load_run(trained_run_dir)
    assert meta["run"]["name"] == Path(trained_run_dir).name
    assert meta["checkpoint"]["name"] == "best"
    assert meta["checkpoint"]["epoch"] == run.checkpoint["epoch"]
    assert meta["latent_size"] == run.model.encode(torch.zeros(1, meta["num_vertices"], 3)).shape[1]
    for part in ("encoder", "decoder", "autoencoder"):
        assert (exported / f"{part}.onnx").is_file()
        assert max(meta["parity_max_abs_diff"][part].values()) <= 1e-5
    assert np.array_equal(np.load(exported / "mean.npy"), run.normalization.mean)


def test_docs_snippet_decodes_in_millimetres(exported, trained_run_dir, monkeypatch):
    monkeypatch.chdir(exported.parent)
    scope: dict = {}
    exec(compile(_snippet(), str(DOCS), "exec"), scope)  # noqa: S102 - the tested docs snippet
    run = load_run(trained_run_dir)
    reference = torch_decode(run, np.zeros((1, meta_latent(exported)), np.float32)) * 1000.0
    tolerance = 1e-5 * float(run.normalization.std.max()) * 1000.0 + 1e-6
    assert scope["mesh_mm"].shape == reference.shape
    assert np.abs(scope["mesh_mm"] - reference).max() <= tolerance


def meta_latent(folder: Path) -> int:
    return json.loads((folder / "model.json").read_text())["latent_size"]


def test_loader_round_trip_matches_pytorch(exported, trained_run_dir):
    run = load_run(trained_run_dir)
    dataset = run.open_dataset()
    meshes = np.array(dataset.vertices[:7], np.float32)  # a writable copy
    model = load(exported)
    from deep3dmm.analysis.latent import encode as torch_encode

    codes = model.encode(meshes)
    std = float(run.normalization.std.max())
    assert np.abs(codes - torch_encode(run, meshes)).max() <= 1e-5
    assert np.abs(model.decode(codes) - torch_decode(run, codes)).max() <= 1e-5 * std + 1e-7


def test_torchscript_export(trained_run_dir, tmp_path, capsys):
    out = tmp_path / "ts"
    argv = ["export", str(trained_run_dir), "--format", "torchscript", "--part", "decoder"]
    assert main([*argv, "--checkpoint", "last", "--out", str(out)]) == 0
    assert "max |exported - PyTorch|" in capsys.readouterr().out
    model = load(out)
    run = load_run(trained_run_dir, checkpoint="last")
    z = np.random.default_rng(0).normal(size=(3, model.latent_size)).astype(np.float32)
    assert np.abs(model.decode(z) - torch_decode(run, z)).max() <= 1e-6
    with pytest.raises(Exception, match="holds no encoder"):
        model.encode(np.zeros((1, len(model.mean), 3)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--format", "tflite"], "unknown export format 'tflite'"),
     (["--part", "middle"], "unknown export part 'middle'")],
)  # fmt: skip
def test_bad_choices_exit_2(trained_run_dir, tmp_path, capsys, extra, message):
    assert main(["export", str(trained_run_dir), "--out", str(tmp_path / "x"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_run_without_checkpoint_exits_2(trained_run_dir, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained_run_dir, copy)
    (copy / "checkpoints" / "best.pt").unlink()
    assert main(["export", str(copy), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
