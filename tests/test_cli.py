import subprocess
import sys

import numpy as np
import pytest

from deep3dmm import __version__
from deep3dmm.cli import main
from deep3dmm.mesh import shapes, write_mesh


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "mesh" in capsys.readouterr().out


def test_mesh_info(tmp_path, capsys):
    write_mesh(tmp_path / "g.ply", *shapes.grid(4, 4))
    assert main(["mesh", "info", str(tmp_path / "g.ply")]) == 0
    out = capsys.readouterr().out
    assert "vertices            16" in out and "boundary loops      1" in out


def test_mesh_shape_writes_file(tmp_path):
    assert main(["mesh", "shape", "torus", "--out", str(tmp_path / "t.obj")]) == 0
    assert (tmp_path / "t.obj").stat().st_size > 0


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "file not found"),
        (b"", "file is empty"),
        (b"ply\nformat ascii 1.0\nelement vertex 3\n", "cannot parse"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.ply"
    if content is not None:
        path.write_bytes(content)
    assert main(["mesh", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("error: ") and message in err[0] and "bad.ply" in err[0]
    )


def test_nan_mesh_exit_2(tmp_path, capsys):
    (tmp_path / "n.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    assert main(["mesh", "info", str(tmp_path / "n.obj")]) == 2
    assert "NaN" in capsys.readouterr().err


def test_console_script_and_module_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "deep3dmm", "mesh", "info", str(tmp_path / "missing.obj")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "missing.obj: file not found" in proc.stderr


def test_debug_shows_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "deep3dmm", "--debug", "mesh", "info", str(tmp_path / "m.obj")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_error_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "deep3dmm", "mesh", "info"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "usage" in proc.stderr
    assert np.isfinite(0.0)
