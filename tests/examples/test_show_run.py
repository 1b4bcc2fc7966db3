import pytest

from deep3dmm.cli import main


@pytest.mark.slow
def test_image_train_show_summary(tmp_path, capsys, example):
    show = example("image_graph/show_run").main
    common = [
        "--dataset",
        "shapes",
        "--size",
        "16",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--num-keypoints",
        "6",
        "--window",
        "2",
        "--quiet",
    ]
    run = tmp_path / "run"
    assert main(["image", "train", "classify", "--out", str(run), *common]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert show([str(run), "--count", "3"]) == 0
    png = run / "keypoints.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["image", "summary", str(run)]) == 0
    assert "n=1" in capsys.readouterr().out
    rec = tmp_path / "rec"
    assert main(["image", "train", "reconstruct", "--out", str(rec), *common]) == 0
    assert show([str(rec), "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_image_cli_bad_input_is_one_line(tmp_path, capsys, example):
    show = example("image_graph/show_run").main
    assert show([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no config.toml" in err and "Traceback" not in err
    cnn = tmp_path / "cnn"
    args = [
        "image",
        "train",
        "classify",
        "--model",
        "cnn",
        "--dataset",
        "shapes",
        "--size",
        "16",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        str(cnn),
    ]
    assert main(args) == 0
    assert show([str(cnn)]) == 2
    assert "selects no keypoints" in capsys.readouterr().err
    assert (
        main(["image", "train", "reconstruct", "--graph", "diffpool", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "diffpool" in capsys.readouterr().err
