"""``deep3dmm register``: one scan, a folder into a prepared dataset, and bad input (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from deep3dmm.cli import main
from deep3dmm.data import PreparedDataset
from deep3dmm.mesh import shapes, write_mesh
from tests.registration.conftest import bumpy


def _scan(path, seed: int, *, unit_scale: float = 1.0):
    vertices, faces = shapes.icosphere(3, radius=0.1)
    rng = np.random.default_rng(seed)
    deformed = bumpy(vertices / 0.1) * 0.1 * (1 + 0.05 * rng.standard_normal())
    trimesh.Trimesh(deformed * unit_scale, faces, process=False).export(path)


def test_register_one_scan_writes_mesh_report_and_heat_map(tmp_path, sphere):
    write_mesh(tmp_path / "template.ply", *sphere)
    _scan(tmp_path / "scan.ply", 0, unit_scale=1000.0)  # in mm against a template in m
    out = tmp_path / "out" / "registered.ply"
    code = main(
        [
            "register",
            str(tmp_path / "scan.ply"),
            "--template",
            str(tmp_path / "template.ply"),
            "--template-unit",
            "m",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["unit_scale"] == 0.001 and any("mm" in n for n in report["notes"])
    assert report["scan_to_result"]["mean_mm"] < 2.0
    assert set(report["scan_to_result"]) >= {"mean_mm", "median_mm", "p95_mm", "within_1mm"}
    assert out.with_suffix(".png").stat().st_size > 1000
    registered = trimesh.load(out, process=False)
    assert len(registered.vertices) == 162


def test_register_landmark_mismatch_exits_2_and_writes_nothing(tmp_path, sphere, capsys):
    write_mesh(tmp_path / "template.ply", *sphere)
    _scan(tmp_path / "scan.ply", 0)
    np.savetxt(tmp_path / "scan_lmk.txt", np.zeros((4, 3)))
    (tmp_path / "ids.txt").write_text("1\n2\n3\n")
    out = tmp_path / "out.ply"
    code = main(
        [
            "register",
            str(tmp_path / "scan.ply"),
            "--template",
            str(tmp_path / "template.ply"),
            "--template-unit",
            "m",
            "--out",
            str(out),
            "--landmarks",
            str(tmp_path / "scan_lmk.txt"),
            "--template-landmarks",
            str(tmp_path / "ids.txt"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "scan_lmk.txt" in err and "ids.txt" in err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_register_folder_into_dataset_skip_bad(tmp_path, sphere):
    write_mesh(tmp_path / "template.ply", *sphere)
    scans = tmp_path / "scans"
    scans.mkdir()
    for k in range(2):
        _scan(scans / f"s{k}.ply", k)
    (scans / "broken.ply").write_bytes(b"")
    args = [
        "register",
        str(scans),
        "--template",
        str(tmp_path / "template.ply"),
        "--template-unit",
        "m",
        "--out",
        str(tmp_path / "data"),
        "--workers",
        "1",
    ]
    assert main(args) == 2
    assert not (tmp_path / "data").exists()  # nothing half-written
    assert main([*args, "--skip-bad"]) == 0
    dataset = PreparedDataset(tmp_path / "data")
    assert len(dataset) == 2 and dataset.unit == "m"
    assert [s["source"] for s in dataset.meta["skipped"]] == ["broken.ply"]
    assert len(dataset.meta["registration"]) == 2
