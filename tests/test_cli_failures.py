"""Every command, given its most likely wrong inputs, fails with one line on stderr and exit 2."""

import json
import sys

import numpy as np
import pytest

from deep3dmm.cli import main
from deep3dmm.mesh import shapes, write_mesh


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """A folder of broken inputs: files, datasets and run folders."""
    root = tmp_path_factory.mktemp("bad")
    (root / "garbage.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 99999999999\n")
    (root / "text.obj").write_bytes(b"\xff\xfe\x00not a mesh")
    (root / "empty").mkdir()
    from deep3dmm.data import IndexRow, write_prepared_dataset
    from deep3dmm.mesh import Template

    v, f = shapes.icosphere(1)
    meshes = np.stack([v * (1 + 0.1 * i) for i in range(6)]).astype(np.float32)
    rows = [IndexRow(f"s{i % 2}", "seq", i, f"synthetic/{i}") for i in range(6)]
    good = write_prepared_dataset(
        root / "good", Template(v, f, name="sphere", unit="m"), meshes, rows, source="t", unit="m"
    ).path
    for name, edit in {
        "bad_unit": lambda d: _meta(d, unit="km"),
        "meta_list": lambda d: (d / "meta.json").write_text("[1, 2]"),
        "meta_binary": lambda d: (d / "meta.json").write_bytes(b"\xff\x00{"),
        "index_binary": lambda d: (d / "index.csv").write_bytes(b"\xff\xfe\x00,\n"),
        "index_columns": lambda d: (d / "index.csv").write_text("a,b\n1,2\n"),
        "vertices_text": lambda d: (d / "vertices.npy").write_text("not numpy"),
    }.items():
        import shutil

        shutil.copytree(good, root / name)
        edit(root / name)
    facex = root / "FaceXModel"
    write_mesh(facex / "generic_neutral_mesh.obj", v, f)
    (facex / "vertex_indices.json").write_text(json.dumps({"names": []}))  # the key is wrong
    npy = root / "npy"
    npy.mkdir()
    for part in ("train", "test"):
        np.save(npy / f"{part}.npy", np.zeros((2, 42, 3), np.float32))
    write_mesh(npy / "template.ply", v, f)
    run = root / "run_broken"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text("[model\nbroken")
    return root


def _meta(folder, **changes):
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **changes}))


CASES = {
    "mesh info missing": ["mesh", "info", "{bad}/missing.ply"],
    "mesh info garbage": ["mesh", "info", "{bad}/garbage.ply"],
    "mesh info non-utf8": ["mesh", "info", "{bad}/text.obj"],
    "hierarchy garbage": ["hierarchy", "{bad}/garbage.ply", "--out", "{tmp}/h.npz"],
    "data import missing": ["data", "import", "coma", "{bad}/missing", "--out", "{tmp}/o"],
    "data import ict --skip-bad": [
        "data", "import", "ict", "{bad}/FaceXModel", "--out", "{tmp}/o", "--skip-bad"
    ],
    "data import ict bad vertex_indices": [
        "data", "import", "ict", "{bad}/FaceXModel", "--out", "{tmp}/o"
    ],
    "data import npy --workers": [
        "data", "import", "npy", "{bad}/npy", "--out", "{tmp}/o", "--workers", "2"
    ],
    "data import folder empty": ["data", "import", "folder", "{bad}/empty", "--out", "{tmp}/o"],
    "data info missing": ["data", "info", "{bad}/missing"],
    "data info not a dataset": ["data", "info", "{bad}/empty"],
    "data info bad unit": ["data", "info", "{bad}/bad_unit"],
    "data info meta list": ["data", "info", "{bad}/meta_list"],
    "data info meta binary": ["data", "info", "{bad}/meta_binary"],
    "data info index binary": ["data", "info", "{bad}/index_binary"],
    "data info index columns": ["data", "info", "{bad}/index_columns"],
    "data info vertices text": ["data", "info", "{bad}/vertices_text"],
    "train missing data": ["train", "--data", "{bad}/missing", "--out", "{tmp}/r", "--quiet"],
    "train bad unit": ["train", "--data", "{bad}/bad_unit", "--out", "{tmp}/r", "--quiet"],
    "train resume nothing": ["train", "--out", "{bad}/empty", "--resume"],
    "train bad config": ["train", "--config", "{bad}/run_broken/config.toml", "--out", "{tmp}/r"],
    "evaluate missing": ["evaluate", "{bad}/missing"],
    "evaluate not a run": ["evaluate", "{bad}/empty"],
    "evaluate broken run": ["evaluate", "{bad}/run_broken"],
    "runs compare missing": ["runs", "compare", "{bad}/missing"],
    "runs compare broken": ["runs", "compare", "{bad}/run_broken"],
    "render missing": ["render", "{bad}/missing", "--out", "{tmp}/x"],
    "interpolate missing": [
        "interpolate", "{bad}/empty", "--from", "0", "--to", "1", "--out", "{tmp}/x"
    ],
    "transfer missing": [
        "transfer", "{bad}/empty", "--source-neutral", "0", "--source-deformed", "1",
        "--target", "2", "--out", "{tmp}/x",
    ],
    "receptive missing": ["receptive", "{bad}/empty", "--out", "{tmp}/x"],
    "plot missing": ["plot", "{bad}/missing", "--out", "{tmp}/p.png"],
    "image summary missing": ["image", "summary", "{bad}/missing"],
    "image train --window for topk": [
        "image", "train", "classify", "--out", "{tmp}/i", "--keypoints", "topk", "--window", "2"
    ],
    "image train --weighted for classify": [
        "image", "train", "classify", "--out", "{tmp}/i", "--weighted"
    ],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_wrong_input_is_one_line_and_exit_2(case, bad, tmp_path, capsys):
    argv = [a.format(bad=bad, tmp=tmp_path) for a in CASES[case]]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err


def test_missing_optional_dependency_names_the_extra(tmp_path, capsys, monkeypatch):
    """scikit-learn absent (``demo.sh`` installs no extras): the pip command, not a traceback."""
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    code = main(["image", "train", "classify", "--out", str(tmp_path / "i"), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "scikit-learn" in err and "pip install 'deep3dmm[image]'" in err
