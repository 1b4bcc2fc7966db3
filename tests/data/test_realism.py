"""The realism measures against hand-computed values on tiny sequences."""

import numpy as np
import pytest

from deep3dmm.data.prepared import IndexRow, write_prepared_dataset
from deep3dmm.data.realism import (
    first_component_residual,
    measure_realism,
    naive_transfer,
    peak_displacement,
)
from deep3dmm.errors import DatasetError
from deep3dmm.mesh.template import Template


def test_peak_displacement_by_hand():
    frames = np.zeros((3, 2, 3))
    frames[1, 0] = (1.0, 0.0, 0.0)  # mean over the two vertices: 0.5
    frames[2, 0] = (0.0, 2.0, 0.0)  # 1.0: the peak
    assert peak_displacement(frames) == (pytest.approx(1.0), 2)


def test_first_component_residual_by_hand():
    # one vertex visiting 0, e_x, e_y: centred frames (-1/3,-1/3), (2/3,-1/3), (-1/3,2/3);
    # the first component is (1,-1)/sqrt2 (variance 1 vs 1/3), the residual lies along
    # (1,1)/sqrt2 with norms sqrt2/3, sqrt2/6, sqrt2/6: mean 2 sqrt2/9; the mean
    # displacement from frame 0 is (0 + 1 + 1)/3.
    frames = np.zeros((3, 1, 3))
    frames[1, 0, 0] = 1.0
    frames[2, 0, 1] = 1.0
    residual, mean = first_component_residual(frames)
    assert residual == pytest.approx(2 * np.sqrt(2) / 9)
    assert mean == pytest.approx(2 / 3)
    # one direction scaled over time leaves nothing
    direction = np.random.default_rng(0).normal(size=(1, 5, 3))
    scaled = np.sin(np.linspace(0, np.pi, 7))[:, None, None] ** 2 * direction + 3.0
    assert first_component_residual(scaled)[0] == pytest.approx(0.0, abs=1e-12)


def test_naive_transfer_by_hand():
    a0, ap = np.zeros((1, 3)), np.array([[1.0, 0.0, 0.0]])
    c0 = np.full((1, 3), 5.0)
    cp = c0 + np.array([[0.0, 1.0, 0.0]])
    error, moved = naive_transfer(a0, ap, c0, cp)
    assert error == pytest.approx(np.sqrt(2)) and moved == pytest.approx(1.0)


def test_measure_realism_on_a_tiny_dataset(tmp_path):
    """Subjects A and C, one sequence of 3 frames (metres); C moves twice as far as A."""
    template = Template(
        np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[0, 1, 2]])
    )
    d = np.zeros((3, 3))
    d[0] = (0.003, 0.0, 0.004)  # 5 mm on one of three vertices: mean 5/3 mm
    a = np.stack([template.vertices, template.vertices + d, template.vertices])
    c0 = template.vertices * 1.1
    c = np.stack([c0, c0 + 2 * d, c0])
    rows = [IndexRow(s, "smile", f, "x") for s in ("A", "C") for f in range(3)]
    data = write_prepared_dataset(
        tmp_path / "d", template, np.concatenate([a, c]), rows, source="test", unit="m"
    )
    report = measure_realism(data)
    by_subject = {r.subject: r for r in report.rows}
    assert by_subject["A"].peak_mm == pytest.approx(5 / 3, rel=1e-5)
    assert by_subject["C"].peak_mm == pytest.approx(10 / 3, rel=1e-5)
    assert by_subject["A"].peak_frame == 1 and by_subject["C"].peak_frame == 1
    # A from C: error |d - 2d| = 5/3 mm over A's 5/3: 1; C from A: 5/3 over 10/3: 0.5
    assert by_subject["A"].transfer_share == pytest.approx(1.0, rel=1e-5)
    assert by_subject["C"].transfer_share == pytest.approx(0.5, rel=1e-5)
    assert by_subject["A"].residual_share == pytest.approx(0.0, abs=1e-6)  # one direction
    summary = report.summary()
    assert summary["transfer_share"] == pytest.approx(0.75, rel=1e-5)
    assert summary["peak_mm"] == pytest.approx(2.5, rel=1e-5)
    assert report.by_sequence()["smile"] == summary


def test_a_one_frame_sequence_is_refused(tmp_path):
    template = Template(np.eye(3), np.array([[0, 1, 2]]))
    data = write_prepared_dataset(
        tmp_path / "d",
        template,
        template.vertices[None],
        [IndexRow("A", "s", 0, "x")],
        source="test",
        unit="m",
    )
    with pytest.raises(DatasetError, match="has 1 frame"):
        measure_realism(data)
