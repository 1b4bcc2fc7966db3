"""Fitting a trained run: prior, transform, losses, registered / scan / landmark fits, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from deep3dmm.cli import main
from deep3dmm.fitting import FitModel, FitOptions, LatentPrior, fit
from deep3dmm.fitting.losses import robust_mean, vertex_normals
from deep3dmm.fitting.transform import rotation_matrix
from deep3dmm.registration import Scan, Similarity, TemplateLandmarks
from deep3dmm.registration.synthetic import random_rotation

FAST = FitOptions(adam_steps=40, lbfgs_rounds=1, lbfgs_iterations=10)


@pytest.fixture(scope="module")
def fm(run):
    return FitModel.from_run(run)


def test_prior_whitening_round_trip_and_covariance():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((500, 4)) @ np.array(
        [[2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0.5, 0], [0, 0, 0.3, 3]]
    )
    prior = LatentPrior.fit(codes, ridge=0.0)
    u = prior.whiten(codes)
    np.testing.assert_allclose(np.cov(u.T), np.eye(4), atol=1e-8)
    back = prior.to_code(torch.as_tensor(u)).numpy()
    np.testing.assert_allclose(back, codes, atol=1e-8)


def test_axis_angle_rotation_matches_scipy():
    omega = torch.tensor([[0.3, -1.2, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float64)
    initial = torch.as_tensor(Rotation.random(2, random_state=1).as_matrix())
    ours = rotation_matrix(omega, initial).numpy()
    expected = Rotation.from_rotvec(omega.numpy()).as_matrix() @ initial.numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_vertex_normals_and_trimmed_mean_match_references(blobs):
    from deep3dmm.mesh import Template

    template = blobs.template
    x = torch.tensor(np.asarray(blobs.vertices[:2]), dtype=torch.float64)
    ours = vertex_normals(x, torch.as_tensor(template.faces)).numpy()
    for k in range(2):
        reference = Template(np.asarray(blobs.vertices[k]), template.faces).vertex_normals
        np.testing.assert_allclose(ours[k], reference, atol=1e-5)
    d = torch.rand(3, 50, dtype=torch.float64)
    expected = np.sort(d.numpy(), axis=1)[:, :45].mean(axis=1)
    np.testing.assert_allclose(robust_mean(d, kernel="trimmed", sigma=1, trim=0.1), expected)


def _errors(result, truth, to_mm):
    return np.linalg.norm(result.vertices - truth, axis=-1).mean(axis=-1) * to_mm


def test_registered_fit_never_worse_than_the_encoder(run, fm):
    from deep3dmm.fitting.api import registered_reconstruction_mm

    dataset = run.open_dataset()
    meshes = np.asarray(dataset.vertices[:4], np.float32)
    result = fit(fm, registered=meshes, options=FAST)
    fitted = _errors(result, meshes, fm.to_mm)
    encoder = registered_reconstruction_mm(fm, meshes)
    assert result.vertices.shape == meshes.shape and result.codes.shape == (4, fm.latent)
    assert np.all(fitted <= encoder + 1e-4)
    assert fitted.mean() < encoder.mean()


def test_scan_fit_undoes_a_rigid_motion(run, fm):
    dataset = run.open_dataset()
    truth = np.asarray(dataset.vertices[17], np.float64)  # an ellipsoid with a bump
    rng = np.random.default_rng(0)
    # the blobs are mirror-symmetric: only a moderate rotation has a unique answer
    motion = Similarity(1.0, random_rotation(rng, max_degrees=30), np.array([0.05, -0.02, 0.1]))
    scan = Scan(motion.apply(truth), dataset.template.faces)
    moved = motion.apply(truth)
    result = fit(fm, scan=scan, options=FAST)
    registered = fit(fm, registered=truth[None].astype(np.float32), options=FAST)
    scan_error = _errors(result, moved, fm.to_mm)[0]
    assert scan_error < 1.5 * _errors(registered, truth, fm.to_mm)[0] + 1.0
    # the transform maps the model frame onto the scan
    np.testing.assert_allclose(result.rotation[0], motion.rotation, atol=0.1)


def test_partial_and_landmark_fits_beat_the_mean_shape(run, fm):
    dataset = run.open_dataset()
    truth = np.asarray(dataset.vertices[17], np.float64)
    with torch.no_grad():
        mean_shape = fm.decode_mm(torch.zeros(1, fm.latent)).numpy()[0] / fm.to_mm
    baseline = np.linalg.norm(mean_shape - truth, axis=1).mean() * fm.to_mm
    keep = truth[:, 0] < np.quantile(truth[:, 0], 0.6)  # 40 % missing
    ids = np.arange(0, len(truth), 8)
    # the blobs are symmetric: a cap of one is placed by a few landmarks, as in practice
    seen = ids[keep[ids]]
    landmarks = TemplateLandmarks(vertex_ids=seen)
    partial = fit(
        fm,
        scan=Scan(truth[keep]),
        partial=True,
        landmarks=truth[seen],
        model_landmarks=landmarks,
        options=FAST,
    )
    lmk = fit(
        fm, landmarks=truth[ids], model_landmarks=TemplateLandmarks(vertex_ids=ids), options=FAST
    )
    assert partial.kind == "partial" and lmk.kind == "landmarks"
    assert _errors(lmk, truth, fm.to_mm)[0] < baseline
    assert _errors(partial, truth, fm.to_mm)[0] < baseline


def test_fit_cli_outputs_and_bad_input(run_dir, tmp_path, capsys):
    out = tmp_path / "fit_row"
    assert (
        main(
            [
                "fit",
                str(run_dir),
                "3",
                "--out",
                str(out),
                "--adam-steps",
                "20",
                "--lbfgs-rounds",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "fit.json").read_text())
    assert report["kind"] == "registered"
    assert report["per_vertex_mm"]["mean"] <= report["encoder_mm"] + 1e-4
    for name in ("fit.ply", "fit_model_frame.ply", "z.npy", "fit.png", "loss.png"):
        assert (out / name).is_file(), name
    # a point cloud (no faces) in mm against the run's metres, partial
    from deep3dmm.train import load_run

    dataset = load_run(run_dir).open_dataset()
    np.save(tmp_path / "cloud.npy", np.asarray(dataset.vertices[2])[:100] * 1000.0)
    out2 = tmp_path / "fit_cloud"
    assert (
        main(
            [
                "fit",
                str(run_dir),
                str(tmp_path / "cloud.npy"),
                "--partial",
                "--out",
                str(out2),
                "--adam-steps",
                "20",
                "--lbfgs-rounds",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out2 / "fit.json").read_text())
    assert report["kind"] == "partial" and any("mm" in n for n in report["notes"])
    # NaN points: exit 2, nothing written
    (tmp_path / "nan.xyz").write_text("0 0 0\nnan 0 0\n0 1 0\n")
    out3 = tmp_path / "fit_nan"
    assert main(["fit", str(run_dir), str(tmp_path / "nan.xyz"), "--out", str(out3)]) == 2
    assert "NaN" in capsys.readouterr().err and not out3.exists()


def test_unexplained_target_warns_with_the_residual(run_dir, tmp_path):
    rng = np.random.default_rng(0)
    blob = rng.uniform(-0.1, 0.1, (300, 3))  # a box of random points: no face explains it
    np.save(tmp_path / "blob.npy", blob)
    out = tmp_path / "fit_blob"
    assert (
        main(
            [
                "fit",
                str(run_dir),
                str(tmp_path / "blob.npy"),
                "--out",
                str(out),
                "--adam-steps",
                "10",
                "--lbfgs-rounds",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "fit.json").read_text())
    assert "no latent code explains" in report["warning"]


def test_scan_border_points_are_the_open_edges():
    from deep3dmm.fitting.fitter import _border_points
    from deep3dmm.mesh import shapes

    vertices, faces = shapes.grid(6, 7)
    border = _border_points({"points": vertices, "faces": faces})
    x, y = vertices[:, 0], vertices[:, 1]
    expected = np.isclose(x, x.min()) | np.isclose(x, x.max())
    expected |= np.isclose(y, y.min()) | np.isclose(y, y.max())
    np.testing.assert_array_equal(border, expected)
    closed_v, closed_f = shapes.icosphere(1)
    assert not _border_points({"points": closed_v, "faces": closed_f}).any()
    assert not _border_points({"points": vertices, "faces": None}).any()


def test_early_stop_only_on_a_flat_history():
    from deep3dmm.fitting.fitter import _converged

    falling = [10.0 * 0.9**k for k in range(30)]
    assert not _converged(falling, 10, 1e-3)
    flat = falling + [falling[-1] * (1 - 1e-5)] * 11
    assert _converged(flat, 10, 1e-3) and not _converged(flat, 10, 0.0)
    assert not _converged(flat[:5], 10, 1e-3)  # too short to tell
    with pytest.raises(Exception, match="tolerance"):
        FitOptions(tolerance=-1.0).check()


def test_partial_fit_keeps_every_scan_point(run, fm):
    """A partial scan's data term is the plain mean over all its points (no rank trim).

    Reference: scipy cKDTree matches and trimesh vertex normals on the fitted mesh,
    point-to-plane with the in-plane share, every scan point -> its nearest vertex.
    """
    import trimesh
    from scipy.spatial import cKDTree

    dataset = run.open_dataset()
    truth = np.asarray(dataset.vertices[17], np.float64)
    keep = truth[:, 0] < np.quantile(truth[:, 0], 0.6)  # 40 % missing
    points = truth[keep] + np.random.default_rng(1).normal(0, 0.01, (int(keep.sum()), 3))
    options = FitOptions(adam_steps=30, lbfgs_rounds=1, lbfgs_iterations=10, tolerance=0)
    result = fit(fm, scan=Scan(points), partial=True, options=options)
    x = result.vertices[0] * fm.to_mm
    normals = trimesh.Trimesh(x, dataset.template.faces, process=False).vertex_normals
    _, match = cKDTree(x).query(points * fm.to_mm)
    delta = points * fm.to_mm - x[match]
    along = np.einsum("pc,pc->p", delta, normals[match]) ** 2
    d = np.sqrt(along + options.tangent * np.clip((delta**2).sum(1) - along, 0, None))
    assert result.data_mm[0] == pytest.approx(d.mean(), rel=0.03)
    assert np.sort(d)[: int(round(0.9 * len(d)))].mean() < 0.9 * d.mean()  # a trim would show


def test_pose_screen_prefers_the_start_the_objective_prefers(run, fm):
    """Of a wrong (90 degrees off) and a right start, the short screen keeps the right one."""
    from deep3dmm.fitting.fitter import _initial_poses, _Problem, _scan_dict, _screen

    dataset = run.open_dataset()
    truth = np.asarray(dataset.vertices[17], np.float64)
    motion = Similarity(1.0, random_rotation(np.random.default_rng(2), max_degrees=40), np.ones(3))
    scan = _scan_dict(Scan(motion.apply(truth), dataset.template.faces), fm.to_mm)
    u0 = np.zeros((1, fm.latent))
    options = FitOptions()
    poses = _initial_poses(
        fm, u0, options, scan=scan, landmarks=None, landmark_matrix=None, batch=1
    )
    assert 1 <= len(poses) <= options.pose_starts
    for a in range(len(poses)):  # distinct starts
        for b in range(a):
            turn = poses[a][0][0] @ poses[b][0][0].T
            assert np.degrees(np.arccos(np.clip((np.trace(turn) - 1) / 2, -1, 1))) > 30
    right = (motion.rotation[None], motion.translation[None] * fm.to_mm)
    turn = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    wrong = (motion.rotation[None] @ turn[None], right[1])

    def make(rotation, translation):
        return _Problem(
            fm,
            u0,
            rotation,
            translation,
            options,
            registered=None,
            scan=scan,
            partial=False,
            landmarks=None,
            landmark_matrix=None,
        )

    assert _screen(make, [wrong, right], 10) is right
    assert _screen(make, [right, wrong], 10) is right
    assert _screen(make, [wrong, right], 0) is wrong  # no screen: the first start
