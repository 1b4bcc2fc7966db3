import pytest


@pytest.mark.slow
def test_fewshot_cli_tiny(tmp_path, capsys, example):
    import json

    main = example("image_graph/fewshot_demo").main

    out = tmp_path / "few"
    args = ["--out", str(out), "--shots", "1", "--iterations", "1"]
    assert main([*args, "--episodes", "10", "--quiet"]) == 0
    metrics = json.loads((out / "fewshot_metrics.json").read_text())
    assert 0 <= metrics["1-shot"]["accuracy"] <= 1
    assert (out / "fewshot.png").is_file()
    assert "5-way 1-shot" in capsys.readouterr().out
