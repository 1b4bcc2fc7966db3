import json

import pytest


@pytest.mark.parametrize(
    "args, message",
    [
        (["agnn_demo", "--iterations", "0", "-1"], "K must be an integer >= 0"),
        (["agnn_demo", "--size", "30"], "not divisible by 2**2"),
        (
            ["caption_demo", "--min-count", "1000000000", "--train-images", "4"],
            "vocabulary is empty",
        ),
        (["caption_demo", "--size", "44", "--train-images", "4"], "not divisible"),
        (["stn_demo", "--init-theta", "1", "0", "0", "2", "0", "0"], "not invertible"),
        (["stn_demo", "--size", "30"], "not divisible by 2**3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, example, args, message):
    main = example(f"image_graph/{args[0]}").main
    assert main([*args[1:], "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_vision_examples_run_tiny(tmp_path, capsys, example):
    def main(argv):
        return example(f"image_graph/{argv[0]}").main(argv[1:])

    out = tmp_path / "agnn"
    assert (
        main(
            [
                "agnn_demo",
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
                "caption_demo",
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
                "stn_demo",
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
