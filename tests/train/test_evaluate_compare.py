import json

import numpy as np
import pytest
import torch

from deep3dmm.analysis import compare_runs, evaluate_run, format_table, markdown_table
from deep3dmm.cli import main
from deep3dmm.errors import ConfigError
from deep3dmm.train import load_run, train
from deep3dmm.viz.curves import plot_curves, read_metrics


@pytest.fixture(scope="module")
def runs(spheres, tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("cmp")
    train(tiny_config(spheres.path, epochs=2), root / "fixed", quiet=True)
    train(tiny_config(spheres.path, epochs=1, pool="attention"), root / "att", quiet=True)
    return root / "fixed", root / "att"


def test_evaluate_matches_loop_reference(runs, spheres):
    run_dir = runs[0]
    result = evaluate_run(run_dir, split="test", device="cpu", progress=False, batch_size=2)
    run = load_run(run_dir)
    # Independent reference: one mesh at a time, float64, metres -> mm.
    errors = []
    for row in run.split.test:
        raw = np.asarray(spheres.vertices[row], dtype=np.float64)
        x = torch.from_numpy(run.normalization.normalize(raw).astype(np.float32))[None]
        with torch.no_grad():
            out = run.model(x)[0].double().numpy()
        recon = out * run.normalization.std + run.normalization.mean
        errors.append(np.linalg.norm(recon - raw, axis=1) * 1000.0)
    errors = np.stack(errors)  # (N, V)
    assert result.num_meshes == len(run.split.test)
    assert result.mean_mm == pytest.approx(errors.mean(), rel=1e-4)
    assert result.median_mm == pytest.approx(np.median(errors), rel=1e-4)
    assert result.std_mm == pytest.approx(errors.std(), rel=1e-3)
    np.testing.assert_allclose(result.per_vertex_mm, errors.mean(0), rtol=1e-4)
    sequences = spheres.sequences[run.split.test]
    for name, row in result.per_sequence.items():
        assert row["meshes"] == int((sequences == name).sum())
        assert row["mean_mm"] == pytest.approx(errors[sequences == name].mean(), rel=1e-4)
    stored = json.loads((run_dir / "eval" / "test.json").read_text())
    assert stored["mean_mm"] == result.mean_mm and stored["checkpoint"]["name"] == "best"
    np.testing.assert_array_equal(
        np.load(run_dir / "eval" / "test_per_vertex.npy"), result.per_vertex_mm
    )
    table = format_table(result)
    assert "median" in table and "seq0" in table


def test_evaluate_cli_and_bad_split(runs, capsys):
    assert main(["evaluate", str(runs[1]), "--split", "val", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "val split" in out and "mean" in out
    assert (runs[1] / "eval" / "val.json").is_file()
    with pytest.raises(ConfigError, match="unknown split"):
        evaluate_run(runs[1], split="holdout")


def test_compare_markdown(runs, tmp_path, capsys):
    evaluate_run(runs[0], progress=False)
    summaries = compare_runs(runs)
    assert [s.epochs for s in summaries] == [2, 1]
    assert summaries[1].pool == "attention" and summaries[0].num_parameters > 0
    table = markdown_table(summaries)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| run | model") and len(lines) == 4
    assert f"{summaries[0].test['mean_mm']:.3f}" in lines[2]
    out_file = tmp_path / "cmp.md"
    assert main(["runs", "compare", *map(str, runs), "--markdown", str(out_file)]) == 0
    assert out_file.read_text() == capsys.readouterr().out.split("wrote")[0]


def test_curves(runs, tmp_path):
    metrics = read_metrics(runs[0])
    assert list(metrics["epoch"]) == [1, 2]
    path = plot_curves(runs, tmp_path / "both.png", labels=["fixed", "attention"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (runs[0] / "curves.png").stat().st_size > 1000
