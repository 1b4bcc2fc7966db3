import numpy as np

from deep3dmm.cli import main
from deep3dmm.mesh import MeshHierarchy, shapes, write_mesh


def test_hierarchy_command_writes_file_and_table(tmp_path, capsys):
    write_mesh(tmp_path / "sphere.ply", *shapes.icosphere(2))
    out = tmp_path / "h.npz"
    argv = ["hierarchy", str(tmp_path / "sphere.ply"), "--factors", "4", "2", "--out", str(out)]
    assert main([*argv, "--spiral-length", "9", "7", "5"]) == 0
    text = capsys.readouterr().out
    assert "level vertices  faces  D nnz  U nnz   spiral seconds" in text
    assert "    0      162    320     41" in text and "9x1" in text and "5x1" in text
    h = MeshHierarchy.load(out)
    assert h.num_vertices == [162, 41, 21]
    assert [s.shape[1] for s in h.spirals] == [9, 7, 5]
    assert f"hierarchy {h.hash} written to {out}" in text


def test_hierarchy_command_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEEP3DMM_CACHE", str(tmp_path / "cache"))
    write_mesh(tmp_path / "torus.obj", *shapes.torus())
    argv = ["hierarchy", str(tmp_path / "torus.obj"), "--factors", "4", "--cache"]
    assert main([*argv, "--reference-vertices", "random", "--seed", "3"]) == 0
    files = list((tmp_path / "cache" / "hierarchies").iterdir())
    assert len(files) == 1 and str(files[0]) in capsys.readouterr().out
    h = MeshHierarchy.load(files[0])
    assert h.params["reference_vertices"] == "random" and h.params["seed"] == 3
    assert np.array_equal(h.down[0] @ h.vertices[0], h.vertices[1])


def test_hierarchy_command_bad_input(tmp_path, capsys):
    write_mesh(tmp_path / "sphere.ply", *shapes.icosphere(1))
    base = ["hierarchy", str(tmp_path / "sphere.ply"), "--out", str(tmp_path / "h.npz")]
    assert main([*base, "--factors", "4", "0"]) == 2
    assert "error: factors must be integers >= 1" in capsys.readouterr().err
    assert main([*base, "--reference-vertices", "top"]) == 2
    assert "--reference-vertices takes vertex indices or 'random'" in capsys.readouterr().err
    assert main(["hierarchy", str(tmp_path / "missing.ply"), "--out", "x.npz"]) == 2
    assert "missing.ply" in capsys.readouterr().err
    assert not (tmp_path / "h.npz").exists()
