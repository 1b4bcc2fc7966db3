import numpy as np
import pytest

from deep3dmm.cli import main
from deep3dmm.data import PreparedDataset
from deep3dmm.errors import DatasetError
from deep3dmm.mesh import shapes, write_mesh
from tests.data.conftest import make_prepared


def test_import_folder_and_info(tmp_path, capsys):
    v, f = shapes.icosphere(1)
    for subject in ("a", "b"):
        for frame in range(3):
            write_mesh(tmp_path / "src" / subject / "walk" / f"{frame:03d}.ply", v * 0.2, f)
    code = main(
        [
            "data",
            "import",
            "folder",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--sequence-level",
            "none",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "6 meshes x 42 vertices (2 subjects, 1 sequences, unit m)" in out
    ds = PreparedDataset(tmp_path / "out")
    assert set(ds.sequences) == {"all"}
    assert main(["data", "info", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "meshes: 6   vertices: 42   faces: 80" in out
    assert "subjects: 2 (a, b)" in out and "split identity: train 3  val 0  test 3" in out
    extent = np.ptp(v.astype(np.float64) * 0.2, axis=0) * 1000  # metres -> mm
    assert "(extent " + " x ".join(f"{x:.1f}" for x in extent) + " mm)" in out


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nope")]) == 2
    assert "prepared dataset folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(["data", "import", "coma", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    )
    assert "no COMA meshes found" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "import",
                "coma",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "o"),
                "--stride",
                "2",
            ]
        )
        == 2
    )
    assert "--stride does not apply to source 'coma'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "import", "mystery", "x", "--out", "y"])
    assert exit_info.value.code == 2


def test_broken_prepared_datasets(tmp_path):
    ds = make_prepared(tmp_path / "d", subjects=1, sequences=1, frames=5)
    (ds.path / "index.csv").write_text(
        (ds.path / "index.csv").read_text().rsplit("\n", 2)[0] + "\n"
    )
    with pytest.raises(DatasetError, match="index.csv lists 4 meshes but vertices.npy holds 5"):
        PreparedDataset(ds.path)
    (ds.path / "vertices.npy").unlink()
    with pytest.raises(DatasetError, match="missing vertices.npy"):
        PreparedDataset(ds.path)
    ds = make_prepared(tmp_path / "e", subjects=1, sequences=1, frames=5)
    np.save(ds.path / "vertices.npy", np.zeros((5, 10, 3), np.float32))
    with pytest.raises(DatasetError, match=r"shape \(5, 10, 3\), expected \(N, 162, 3\)"):
        PreparedDataset(ds.path)
