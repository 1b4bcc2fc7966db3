from deep3dmm.image_graph.active import ActiveResult


def test_active_plot_cli(tmp_path, capsys, example):
    main = example("image_graph/active_demo").main

    for method, seed in (("random", 0), ("random", 1), ("coregcn", 0)):
        ActiveResult(method, seed, [50, 100, 150], [0.5, 0.6 + seed / 100, 0.7]).save(
            tmp_path / f"active_{method}_seed{seed}.json"
        )
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "active.png").stat().st_size > 1000
    assert "3 runs" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 2
    assert "no active_*.json" in capsys.readouterr().err
