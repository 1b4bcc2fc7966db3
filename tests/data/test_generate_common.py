"""Fast tests of the generator machinery (no anny model needed)."""

import json

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from deep3dmm.data.generate import (
    BODY_MOTIONS,
    FACE_EXPRESSIONS,
    HAND_POSES,
    bundled_template,
    cache_root,
    inside_vertices,
    winding_numbers,
)
from deep3dmm.data.generate.bodies import motion_rotation_vectors
from deep3dmm.data.generate.common import (
    ADULT_PHENOTYPES,
    Z_UP_TO_Y_UP,
    check_counts,
    pick,
    rotation_matrices,
    sample_local_changes,
    sample_phenotypes,
)
from deep3dmm.data.generate.default import DEFAULT_FACES, default_faces_path
from deep3dmm.data.generate.faces import JAW, MAX_JAW
from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.mesh import shapes

PHENOTYPES = ["gender", "age", "muscle", "weight", "height", "proportions", "cupsize",
              "firmness", "african", "asian", "caucasian"]  # fmt: skip


def test_rotation_matrices_match_scipy():
    vectors = np.random.default_rng(0).normal(0, 1.0, (4, 5, 3))
    vectors[0, 0] = 0.0  # identity
    expected = Rotation.from_rotvec(vectors.reshape(-1, 3)).as_matrix().reshape(4, 5, 3, 3)
    np.testing.assert_allclose(rotation_matrices(vectors), expected, atol=1e-12)
    np.testing.assert_allclose(rotation_matrices(vectors)[0, 0], np.eye(3))


def test_dataset_frame_is_a_proper_rotation_to_y_up_facing_z():
    assert np.linalg.det(Z_UP_TO_Y_UP) == pytest.approx(1.0)
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ [0, 0, 1], [0, 1, 0])  # up stays up
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ [0, -1, 0], [0, 0, 1])  # anny faces -y


def test_phenotypes_adult_ranges_and_deterministic():
    a = sample_phenotypes(np.random.default_rng(3), 500, PHENOTYPES)
    b = sample_phenotypes(np.random.default_rng(3), 500, PHENOTYPES)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500, 11) and a.dtype == np.float32
    for name, (low, high) in ADULT_PHENOTYPES.items():
        column = a[:, PHENOTYPES.index(name)]
        assert column.min() >= low and column.max() <= high
    assert a[:, 1].min() >= 0.6  # age: adults only (young = 2/3 on anny's scale)
    gender = a[:, 0]
    assert np.all((gender <= 0.2) | (gender >= 0.8)) and 150 < (gender > 0.5).sum() < 350
    np.testing.assert_allclose(a[:, 8:].sum(axis=1), 1.0, rtol=1e-5)  # race weights


def test_phenotype_range_overrides():
    a = sample_phenotypes(np.random.default_rng(3), 300, PHENOTYPES, ranges={"height": (0.4, 0.5)})
    height = a[:, PHENOTYPES.index("height")]
    assert height.min() >= 0.4 and height.max() <= 0.5 and np.ptp(height) > 0.08
    b = sample_phenotypes(np.random.default_rng(3), 300, PHENOTYPES)
    np.testing.assert_array_equal(a[:, 0], b[:, 0])  # only the overridden column changes


def test_local_changes_nearly_symmetric():
    labels = ["r-ear-lobe-incr", "l-ear-lobe-incr", "nose-hump-incr"]
    values = sample_local_changes(np.random.default_rng(1), 2000, labels, scale=0.4)
    assert values.shape == (2000, 3) and np.abs(values).max() <= 1
    left_right = np.abs(values[:, 1] - values[:, 0])
    assert np.median(left_right) < 0.05  # twins: 0.1 * scale noise
    independent = np.abs(values[:, 2] - values[:, 0])
    assert np.median(independent) > 0.2


def test_winding_numbers_of_a_sphere():
    vertices, faces = shapes.icosphere(3)
    points = np.array([[0.0, 0.0, 0.0], [0.5, 0.2, -0.1], [3.0, 0.0, 0.0], [0.0, -2.0, 1.0]])
    np.testing.assert_allclose(winding_numbers(points, vertices, faces), [1, 1, 0, 0], atol=1e-9)
    flipped = winding_numbers(points[:1], vertices, faces[:, ::-1])
    np.testing.assert_allclose(flipped, [-1.0], atol=1e-9)
    on_surface = winding_numbers(vertices, vertices, faces)
    assert np.all(np.abs(on_surface - 0.5) < 0.1)
    assert not inside_vertices(vertices, faces).any()


def test_inside_vertices_detects_interpenetration():
    a, fa = shapes.icosphere(2)
    centre, radius = np.array([0.8, 0.0, 0.0]), 0.5
    b = a * radius + centre  # the small sphere and the big one enter each other
    vertices = np.concatenate([a, b])
    faces = np.concatenate([fa, fa + len(a)])
    inside = inside_vertices(vertices, faces)
    # independent reference: distances to the other sphere's centre (away from the
    # polygonal boundary, where the icosphere and the true sphere differ)
    in_small = np.linalg.norm(a - centre, axis=1) / radius
    in_big = np.linalg.norm(b, axis=1)
    clear = np.concatenate([np.abs(in_small - 1) > 0.05, np.abs(in_big - 1) > 0.05])
    expected = np.concatenate([in_small < 1, in_big < 1])
    np.testing.assert_array_equal(inside[clear], expected[clear])
    assert 0 < expected.sum() and inside.sum() < len(vertices) // 2


def test_counts_and_sequence_names_checked():
    with pytest.raises(ConfigError, match="frames must be an integer >= 2"):
        check_counts(subjects=2, sequences=2, frames=1)
    with pytest.raises(ConfigError, match="subjects must be an integer >= 1"):
        check_counts(subjects=0, sequences=2, frames=3)
    with pytest.raises(ConfigError, match="only 6 hand poses"):
        pick(list(HAND_POSES), 7, "hand poses")
    assert pick(list(FACE_EXPRESSIONS), 2, "x") == ["bareteeth", "cheeks_in"]


def test_face_expressions_are_coma_named_and_valid():
    coma = ["bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up", "mouth_down",
            "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up"]  # fmt: skip
    assert list(FACE_EXPRESSIONS)[:12] == coma
    from anny.models.facial_actions import FACIAL_ACTION_LABELS

    for peaks in FACE_EXPRESSIONS.values():
        assert set(peaks) <= set(FACIAL_ACTION_LABELS) | {JAW}
        assert all(0 < abs(w) <= 1 for w in peaks.values())
        assert 0 < peaks.get(JAW, 0.1) <= MAX_JAW  # radians: the jaw only opens


def test_body_motions_start_and_end_at_rest():
    bones = sorted({b for keys, _ in BODY_MOTIONS.values() for pose, _ in keys for b in pose})
    vectors, hops = motion_rotation_vectors(list(BODY_MOTIONS), bones, np.linspace(0, 1, 13))
    assert vectors.shape == (len(BODY_MOTIONS), 13, len(bones), 3)
    np.testing.assert_allclose(vectors[:, [0, -1]], 0.0, atol=1e-12)
    np.testing.assert_allclose(hops[:, [0, -1]], 0.0, atol=1e-12)
    assert np.all(np.abs(vectors).max(axis=(1, 2, 3)) > 0.1)  # every motion moves
    assert np.abs(vectors).max() < 2.1  # knees <= 2 rad (115 degrees)
    # per bone time windows: joints move at their own times, still at rest at both ends
    windows = np.broadcast_to([0.1, 0.9], (len(BODY_MOTIONS), len(bones), 2)).copy()
    windows[:, 0] = (0.0, 0.5)  # the first bone finishes at mid-sequence
    shifted, _ = motion_rotation_vectors(list(BODY_MOTIONS), bones, np.linspace(0, 1, 13), windows)
    np.testing.assert_allclose(shifted[:, [0, -1]], 0.0, atol=1e-12)
    np.testing.assert_allclose(shifted[:, 6:, 0], 0.0, atol=1e-12)  # done by t = 0.5
    assert np.abs(shifted - vectors).max() > 0.05
    assert hops.min() >= 0
    _, fine = motion_rotation_vectors(["jumping_jacks"], bones, np.linspace(0, 1, 2001))
    assert fine.max() == pytest.approx(0.08, abs=1e-4)  # airborne between the two stances


@pytest.mark.parametrize(
    "kind, vertices, faces",
    [("faces", 4200, 8356), ("bodies", 13348, 26692), ("hands", 1609, 3196)],
)
def test_bundled_templates(kind, vertices, faces):
    template = bundled_template(kind)
    assert (template.num_vertices, template.num_faces, template.unit) == (vertices, faces, "m")
    assert connected_components(template.adjacency)[0] == 1
    extent = np.ptp(template.vertices, axis=0)
    assert extent.argmax() == 1  # y up: the tallest extent (head, body, fingers) is along y


def test_bundled_template_errors(tmp_path):
    with pytest.raises(DatasetError, match="no bundled template for 'feet'"):
        bundled_template("feet")
    with pytest.raises(DatasetError, match="bundled template not found.*write_templates"):
        bundled_template("faces", directory=tmp_path)


def test_default_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEP3DMM_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("DEEP3DMM_CACHE")
    assert cache_root().name == "deep3dmm"
    path = default_faces_path(tmp_path)
    assert path.parent == tmp_path / "datasets" and path.name.startswith("faces-default-")
    assert default_faces_path(tmp_path) == path  # stable
    monkeypatch.setitem(DEFAULT_FACES, "frames", DEFAULT_FACES["frames"] + 1)
    assert default_faces_path(tmp_path) != path  # keyed by the parameters
    json.dumps(DEFAULT_FACES)


def test_cli_registers_data_make():
    from deep3dmm.cli import build_parser

    args = build_parser().parse_args(
        ["data", "make", "hands", "--out", "x", "--subjects", "2", "--frames", "3"]
    )
    assert (args.kind, args.out, args.subjects, args.frames, args.sequences) == (
        "hands", "x", 2, 3, None
    )  # fmt: skip


def test_cli_bad_counts_exit_2(tmp_path, capsys):
    from deep3dmm.cli import main

    assert main(["data", "make", "faces", "--out", str(tmp_path / "f"), "--frames", "1"]) == 2
    assert "frames must be an integer >= 2" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()
