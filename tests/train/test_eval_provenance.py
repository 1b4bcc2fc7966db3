"""Every evaluation records its checkpoint, dataset content and split; consumers check them."""

import json
import shutil

import pytest

from deep3dmm.analysis import compare_runs, evaluate_run, markdown_table
from deep3dmm.analysis.provenance import StaleEvaluationError, check_eval, stale_reason
from deep3dmm.atomic import file_digest
from deep3dmm.cli import main
from deep3dmm.errors import DatasetError
from deep3dmm.train import RunFiles, train


@pytest.fixture
def run(tmp_path, write_spheres, tiny_config):
    """A 1-epoch run on its own copy of the data, evaluated on the test split."""
    data = write_spheres(tmp_path / "data", count=24)
    run_dir = tmp_path / "run"
    train(tiny_config(data.path, epochs=1), run_dir, quiet=True)
    evaluate_run(run_dir, progress=False)
    return run_dir, data


def stored(run_dir):
    return json.loads((run_dir / "eval" / "test.json").read_text())


def test_evaluation_records_checkpoint_dataset_and_split(run):
    run_dir, data = run
    files = RunFiles(run_dir)
    provenance = stored(run_dir)["provenance"]
    assert provenance["checkpoint"] == {
        "name": "best", "epoch": 1, "sha256": file_digest(files.best)
    }  # fmt: skip
    assert provenance["dataset"]["content_hash"] == data.meta["content_hash"]
    assert provenance["split"] == {"name": "test", "sha256": file_digest(files.split)}
    assert stale_reason(run_dir, stored(run_dir)) is None
    [summary] = compare_runs([run_dir])
    assert summary.stale is None and "stale" not in markdown_table([summary])


def test_resume_no_eval_marks_the_row_stale(run, capsys):
    run_dir, _ = run
    before = file_digest(RunFiles(run_dir).best)
    config = str(run_dir / "config.toml")
    code = main(["train", "--config", config, "--out", str(run_dir), "--resume", "--epochs", "3",
                 "--no-eval", "--quiet"])  # fmt: skip
    assert code == 0
    assert file_digest(RunFiles(run_dir).best) != before  # training improved the best model
    [summary] = compare_runs([run_dir])
    assert "best.pt changed since the evaluation (epoch 1)" in summary.stale
    capsys.readouterr()
    assert main(["runs", "compare", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "| stale | stale | stale |" in out and "evaluation stale: best.pt changed" in out
    with pytest.raises(StaleEvaluationError, match="stale: best.pt changed"):
        check_eval(run_dir, stored(run_dir))
    evaluate_run(run_dir, progress=False)  # re-evaluating makes it current again
    assert compare_runs([run_dir])[0].stale is None


def test_evaluate_last_is_not_reported_as_best(run):
    run_dir, _ = run
    assert main(["evaluate", str(run_dir), "--checkpoint", "last", "--quiet"]) == 0
    assert "evaluated checkpoint 'last'" in compare_runs([run_dir])[0].stale
    assert stale_reason(run_dir, stored(run_dir), checkpoint=None) is None


def test_evaluate_on_other_data_is_refused(run, tmp_path, write_spheres, capsys):
    run_dir, _ = run
    other = write_spheres(tmp_path / "other", count=24, seed=5)  # same template, other meshes
    with pytest.raises(DatasetError, match="split was made for dataset content"):
        evaluate_run(run_dir, data=other.path, progress=False)
    assert main(["evaluate", str(run_dir), "--data", str(other.path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "would mix training meshes" in err
    # The same content elsewhere (a copy) is the same dataset.
    shutil.copytree(run[1].path, tmp_path / "copy")
    evaluate_run(run_dir, data=tmp_path / "copy", progress=False)


def test_regenerated_dataset_is_refused_and_marks_stale(run, write_spheres):
    run_dir, data = run
    shutil.rmtree(data.path)
    write_spheres(data.path, count=24, seed=9)  # regenerated in place: other content
    assert "the dataset changed since the evaluation" in compare_runs([run_dir])[0].stale
    with pytest.raises(DatasetError, match="split was made for dataset content"):
        evaluate_run(run_dir, progress=False)
    from deep3dmm.analysis.heatmaps import compare_figure, render_run
    from deep3dmm.train import load_run

    with pytest.raises(DatasetError, match="split was made for dataset content"):
        render_run(load_run(run_dir), run_dir / "render", progress=False)
    with pytest.raises(DatasetError, match="split was made for dataset content"):
        compare_figure([run_dir, run_dir], run_dir / "cmp.png")
