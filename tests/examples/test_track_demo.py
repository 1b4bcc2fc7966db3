import pytest


@pytest.mark.slow
def test_track_demo_cli_tiny(tmp_path, capsys, example):
    import json

    main = example("image_graph/track_demo").main

    out = tmp_path / "track"
    args = ["--out", str(out), "--train-seqs", "1", "--test-seqs", "1"]
    assert main([*args, "--steps", "2", "--quiet"]) == 0
    metrics = json.loads((out / "track_metrics.json").read_text())
    assert set(metrics["time_aware"]) == {"precision", "recall"}
    assert (out / "track.png").stat().st_size > 1000
    assert "precision" in capsys.readouterr().out
