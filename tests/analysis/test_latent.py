import numpy as np
import pytest
import torch

from deep3dmm.analysis.inputs import resolve_input
from deep3dmm.analysis.latent import (
    decode,
    encode,
    find_ground_truth,
    interpolate,
    mean_error_mm,
    reconstruct,
    transfer,
)
from deep3dmm.errors import ConfigError, DatasetError, MeshFormatError, TopologyMismatchError
from deep3dmm.mesh import shapes, write_mesh


def _forward(run, raw):
    """Independent reference: the model's forward pass on one normalised mesh."""
    x = torch.from_numpy(run.normalization.normalize(raw)[None].astype(np.float32))
    with torch.no_grad():
        out = run.model(x)[0].double().numpy()
    return out * run.normalization.std + run.normalization.mean


def test_interpolation_endpoints_are_reconstructions(run, blobs):
    a, b = np.array(blobs.vertices[0]), np.array(blobs.vertices[10])
    path = interpolate(run, a, b, steps=5)
    assert path.vertices.shape == (5, blobs.template.num_vertices, 3)
    np.testing.assert_allclose(path.t, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(path.vertices[0], _forward(run, a), atol=1e-5)
    np.testing.assert_allclose(path.vertices[-1], _forward(run, b), atol=1e-5)
    z = encode(run, np.stack([a, b]))
    np.testing.assert_allclose(path.codes[2], z.mean(0), atol=1e-6)
    np.testing.assert_allclose(path.vertices[2], decode(run, z.mean(0)[None])[0], atol=1e-5)
    with pytest.raises(ConfigError, match="at least 2 steps"):
        interpolate(run, a, b, steps=1)


def test_transfer_identity_and_ground_truth(run, blobs):
    a, b, c = (np.array(blobs.vertices[i]) for i in (0, 2, 6))
    same = transfer(run, a, a, c)
    np.testing.assert_allclose(same.result, reconstruct(run, c[None])[0], atol=1e-5)
    np.testing.assert_allclose(same.naive, c, atol=1e-7)
    assert same.ground_truth is None and same.error_mm is None

    # Row 2 = s0/seq0/frame 2; row 6 = s1/seq0/frame 0 -> ground truth s1/seq0/frame 2 = row 8.
    assert find_ground_truth(blobs, 2, 6) == 8
    assert find_ground_truth(blobs, 6, 6) is None  # would be the target itself
    truth = np.array(blobs.vertices[8])
    out = transfer(run, a, b, c, ground_truth=truth, to_mm=1000.0)
    z = encode(run, np.stack([a, b, c]))
    np.testing.assert_allclose(out.result, decode(run, (z[2] + z[1] - z[0])[None])[0], atol=1e-5)
    np.testing.assert_allclose(out.naive, c + b - a, atol=1e-6)
    loop = np.mean([np.linalg.norm(out.naive[v] - truth[v]) for v in range(len(truth))]) * 1000
    assert out.naive_error_mm == pytest.approx(loop, rel=1e-5)
    assert out.error_mm == pytest.approx(mean_error_mm(out.result, truth, to_mm=1000.0))
    assert out.reconstruction_error_mm == pytest.approx(
        mean_error_mm(_forward(run, truth), truth, to_mm=1000.0), rel=1e-4
    )


def test_resolve_input(blobs, tmp_path):
    row = resolve_input("3", dataset=blobs)
    assert row.row == 3 and row.label == "#3 s0/seq1/0"
    np.testing.assert_array_equal(row.vertices, blobs.vertices[3])
    assert resolve_input(4, dataset=blobs).row == 4
    path = tmp_path / "mesh.ply"
    write_mesh(path, blobs.vertices[5], blobs.template.faces)
    mesh = resolve_input(path, dataset=blobs)
    assert mesh.row is None and mesh.path == path
    np.testing.assert_array_equal(mesh.vertices, blobs.vertices[5])
    with pytest.raises(DatasetError, match=r"index 18 is out of range.*holds 18 meshes"):
        resolve_input("18", dataset=blobs)
    with pytest.raises(DatasetError, match="out of range"):
        resolve_input(-1, dataset=blobs)
    other = tmp_path / "other.ply"
    write_mesh(other, *shapes.icosphere(1))
    with pytest.raises(TopologyMismatchError, match="expected 162 vertices"):
        resolve_input(other, dataset=blobs)
    flipped = tmp_path / "flipped.ply"
    write_mesh(flipped, blobs.vertices[0], blobs.template.faces[:, ::-1])
    with pytest.raises(TopologyMismatchError, match="faces differ"):
        resolve_input(flipped, dataset=blobs)
    with pytest.raises(MeshFormatError, match="no such mesh file"):
        resolve_input(tmp_path / "missing.ply", dataset=blobs)
