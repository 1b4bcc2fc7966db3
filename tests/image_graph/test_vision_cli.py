import json

import pytest

from deep3dmm.cli import main


@pytest.mark.parametrize(
    "args, message",
    [
        (["image", "agnn-demo", "--iterations", "0", "-1"], "K must be an integer >= 0"),
        (["image", "agnn-demo", "--size", "30"], "not divisible by 2**2"),
        (
            ["image", "caption-demo", "--min-count", "1000000000", "--train-images", "4"],
            "vocabulary is empty",
        ),
        (["image", "caption-demo", "--size", "44", "--train-images", "4"], "not divisible"),
        (["image", "stn-demo", "--init-theta", "1", "0", "0", "2", "0", "0"], "not invertible"),
        (["image", "stn-demo", "--size", "30"], "not divisible by 2**3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_vision_examples_run_tiny(tmp_path, capsys):
    out = tmp_path / "agnn"
    assert (
        main(
            [
                "image",
                "agnn-demo",
                "--out",
                str(out),
                "--iterations",
                "0",
                "1",
                "--train-clips",
                "8",
                "--test-clips",
                "4",
                "--frames",
                "3",
                "--size",
                "16",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((out / "agnn_metrics.json").read_text())
    assert set(m["models"]) == {"K=0", "K=1"} and 0 <= m["models"]["K=1"]["mean_iou"] <= 1
    assert (out / "agnn.png").read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "cap"
    assert (
        main(
            [
                "image",
                "caption-demo",
                "--out",
                str(out),
                "--train-images",
                "16",
                "--test-images",
                "4",
                "--size",
                "24",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((out / "caption_metrics.json").read_text())
    assert set(m["models"]) == {"soft", "hard", "none"}
    assert all(0 <= r["bleu4"] <= r["bleu1"] <= 1 for r in m["models"].values())
    assert (out / "caption_attention.png").stat().st_size > 1000
    out = tmp_path / "stn"
    assert (
        main(
            [
                "image",
                "stn-demo",
                "--out",
                str(out),
                "--models",
                "plain",
                "stn",
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    m = json.loads((out / "stn_metrics.json").read_text())
    assert len(m["test_accuracy"]["stn"]) == 1
    assert (out / "stn.png").read_bytes()[:4] == b"\x89PNG"
    assert "mean IoU" in capsys.readouterr().out
