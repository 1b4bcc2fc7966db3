import json

import numpy as np
import pytest

from deep3dmm.data import PreparedDataset
from deep3dmm.data.importers import import_coma, import_folder, reading
from deep3dmm.errors import ConfigError, DatasetError, MeshFormatError, TopologyMismatchError
from deep3dmm.mesh import shapes, write_mesh

SUBJECTS = ["FaceTalk_170725_00137_TA", "FaceTalk_170904_00128_TA"]
EXPRESSIONS = ["bareteeth", "mouth_extreme"]


def write_coma(root, frames=(1, 2, 10)):
    """A COMA tree of noisy icospheres (42 vertices); returns {(subject, expr, frame): v}."""
    vertices, faces = shapes.icosphere(1)
    rng = np.random.default_rng(0)
    meshes = {}
    for subject in SUBJECTS:
        for expression in EXPRESSIONS:
            for frame in frames:
                v = (vertices * 0.1 + rng.normal(0, 0.001, vertices.shape)).astype(np.float32)
                path = root / subject / expression / f"{expression}.{frame:06d}.ply"
                write_mesh(path, v, faces)
                meshes[(subject, expression, frame)] = v
    return meshes, faces


def test_coma_layout_order_and_values(tmp_path):
    meshes, faces = write_coma(tmp_path / "coma")
    ds = import_coma(tmp_path / "coma", tmp_path / "out", workers=1)
    keys = sorted(meshes)  # independent order: subject, expression, frame
    assert [(r.subject, r.sequence, r.frame) for r in ds.index] == keys
    np.testing.assert_array_equal(ds.vertices, np.stack([meshes[k] for k in keys]))
    assert ds.index[0].source == f"{SUBJECTS[0]}/bareteeth/bareteeth.000001.ply"
    assert ds.unit == "m" and ds.meta["source"] == "coma"
    np.testing.assert_array_equal(ds.template.faces, faces)
    np.testing.assert_array_equal(ds.template.vertices, meshes[keys[0]])


def test_coma_filters_and_process_pool_give_the_same_rows(tmp_path, monkeypatch):
    write_coma(tmp_path / "coma")
    serial = import_coma(tmp_path / "coma", tmp_path / "a", workers=1)
    monkeypatch.setattr(reading, "CHUNK", 2)  # 6 chunks over 2 processes
    pooled = import_coma(tmp_path / "coma", tmp_path / "b", workers=2)
    np.testing.assert_array_equal(serial.vertices, pooled.vertices)
    assert serial.index == pooled.index
    only = import_coma(
        tmp_path / "coma",
        tmp_path / "c",
        workers=1,
        subjects=[SUBJECTS[1]],
        expressions=["mouth_extreme"],
    )
    assert {(r.subject, r.sequence) for r in only.index} == {(SUBJECTS[1], "mouth_extreme")}


def test_coma_bad_files(tmp_path, monkeypatch):
    write_coma(tmp_path / "coma")
    broken = tmp_path / "coma" / SUBJECTS[0] / "bareteeth" / "bareteeth.000002.ply"
    broken.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 42\nend_hea")
    grid_v, grid_f = shapes.grid(6, 7)
    other = tmp_path / "coma" / SUBJECTS[1] / "bareteeth" / "bareteeth.000010.ply"
    write_mesh(other, grid_v, grid_f)  # 42 vertices, other faces
    with pytest.raises(MeshFormatError, match="bareteeth.000002.ply: cannot parse PLY"):
        import_coma(tmp_path / "coma", tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()  # nothing half-written
    broken.unlink()
    with pytest.raises(TopologyMismatchError, match=r"bareteeth.000010.ply: expected 42 vertices"):
        import_coma(tmp_path / "coma", tmp_path / "out", workers=1)
    broken.write_bytes(b"garbage")
    monkeypatch.setattr(reading, "CHUNK", 3)
    ds = import_coma(tmp_path / "coma", tmp_path / "out", workers=2, skip_bad=True)
    assert len(ds) == 10
    skipped = json.loads((tmp_path / "out" / "meta.json").read_text())["skipped"]
    assert [s["source"] for s in skipped] == [
        f"{SUBJECTS[0]}/bareteeth/bareteeth.000002.ply",
        f"{SUBJECTS[1]}/bareteeth/bareteeth.000010.ply",
    ]


def test_coma_wrong_layout_and_empty(tmp_path):
    v, f = shapes.icosphere(1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no COMA meshes found"):
        import_coma(tmp_path / "empty", tmp_path / "out")
    write_mesh(tmp_path / "flat" / "a.ply", v, f)
    with pytest.raises(DatasetError, match="not in SRC/<subject>/<expression>.*data import folder"):
        import_coma(tmp_path / "flat", tmp_path / "out")
    with pytest.raises(DatasetError, match="COMA folder not found"):
        import_coma(tmp_path / "missing", tmp_path / "out")


def test_folder_levels_natural_order_and_formats(tmp_path):
    v, f = shapes.torus(8, 6)
    root = tmp_path / "hands"
    expected = {}
    for subject in ("left", "right"):
        for name in ("pose10.obj", "pose2.off", "pose1.ply"):
            v2 = (v * 0.1 * (1 + len(expected) / 10)).astype(np.float32)
            write_mesh(root / subject / "grab" / name, v2, f)
            expected[(subject, name)] = v2
    ds = import_folder(root, tmp_path / "out", workers=1)
    assert [(r.subject, r.sequence, r.frame) for r in ds.index] == [
        (s, "grab", n) for s in ("left", "right") for n in (1, 2, 10)
    ]
    np.testing.assert_allclose(ds.vertices[2], expected[("left", "pose10.obj")], atol=1e-6)
    assert ds.unit == "m"  # 26 cm wide torus: only metres give human scale
    flat = import_folder(
        root, tmp_path / "out2", workers=1, subject_level=None, sequence_level=-1, unit="cm"
    )
    assert set(flat.subjects) == {"all"} and set(flat.sequences) == {"grab"}
    assert flat.unit == "cm"


def test_folder_frames_without_numbers_and_bad_input(tmp_path):
    v, f = shapes.icosphere(1)
    for name in ("b.ply", "a.ply", "c.ply"):
        write_mesh(tmp_path / "src" / name, v * 0.1, f)
    ds = import_folder(tmp_path / "src", tmp_path / "out", workers=1)
    assert [(r.source, r.frame, r.subject) for r in ds.index] == [
        ("a.ply", 0, "all"),
        ("b.ply", 1, "all"),
        ("c.ply", 2, "all"),
    ]
    gv, gf = shapes.grid(4, 4)
    write_mesh(tmp_path / "src" / "d.ply", gv * 0.1, gf)
    with pytest.raises(TopologyMismatchError, match=r"d.ply: expected 42 vertices .*found 16"):
        import_folder(tmp_path / "src", tmp_path / "out", workers=1)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match="no mesh files"):
        import_folder(tmp_path / "nothing", tmp_path / "out")
    write_mesh(tmp_path / "big" / "x.ply", v * 100, f)  # 200 wide: mm or cm
    with pytest.raises(ConfigError, match="cannot tell the length unit.*--unit"):
        import_folder(tmp_path / "big", tmp_path / "out")
    assert PreparedDataset(tmp_path / "out").meta["num_meshes"] == 3  # earlier result kept
