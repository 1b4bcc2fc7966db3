import json
import shutil

import pytest
from PIL import Image

from deep3dmm.cli import main


@pytest.mark.slow
def test_commands_write_pictures(run_dir, tmp_path, capsys):
    out = tmp_path / "render"
    assert main(["render", str(run_dir), "--out", str(out), "--count", "1"]) == 0
    for name in ("reconstructions.png", "mean_error_test.png"):
        assert Image.open(out / name).size[0] > 200
    assert "split mean error" in capsys.readouterr().out

    interp = tmp_path / "interp"
    assert main(["interpolate", str(run_dir), "--from", "0", "--to", "9", "--steps", "3",
                 "--out", str(interp)]) == 0  # fmt: skip
    assert sorted(p.name for p in interp.glob("*.ply")) == [f"step_0{k}.ply" for k in range(3)]
    assert Image.open(interp / "interpolation.gif").n_frames == 4

    transfer = tmp_path / "transfer"
    assert main(["transfer", str(run_dir), "--source-neutral", "0", "--source-deformed", "2",
                 "--target", "6", "--out", str(transfer)]) == 0  # fmt: skip
    report = json.loads((transfer / "transfer.json").read_text())
    assert report["ground_truth"].startswith("#8 ") and report["naive_error_mm"] > 0
    assert "naive C + (B - A)" in capsys.readouterr().out

    rec = tmp_path / "rec"
    assert main(["receptive", str(run_dir), "--level", "1", "--direction", "up",
                 "--vertices", "0", "5", "--out", str(rec)]) == 0  # fmt: skip
    assert (rec / "receptive_up1.png").is_file()

    assert main(["plot", str(run_dir), str(run_dir), "--labels", "a", "b",
                 "--out", str(tmp_path / "c.png")]) == 0  # fmt: skip
    figure = tmp_path / "cmp.png"
    assert main(["runs", "compare", str(run_dir), str(run_dir), "--figure", str(figure)]) == 0
    assert Image.open(figure).size[0] > 5 * 200


def test_bad_input_exit_2(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    shutil.rmtree(broken / "checkpoints")
    assert main(["render", str(broken), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    args = ["interpolate", str(run_dir), "--from", "0", "--to", "99", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "index 99 is out of range" in capsys.readouterr().err
    args = ["transfer", str(run_dir), "--source-neutral", str(tmp_path / "no.ply"),
            "--source-deformed", "1", "--target", "2", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 2
    assert "no such mesh file" in capsys.readouterr().err
    assert main(["receptive", str(run_dir), "--level", "5", "--out", str(tmp_path)]) == 2
    assert "level 5 is out of range" in capsys.readouterr().err
    assert main(["render", str(run_dir), "--out", str(tmp_path), "--view", "back"]) == 2
