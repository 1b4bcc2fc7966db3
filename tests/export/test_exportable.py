"""Exported ONNX / TorchScript models equal the live autoencoder, for every preset."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from deep3dmm.export import ExportableAutoencoder, export_model, load
from deep3dmm.export.exportable import DenseMap, NeighbourSum
from deep3dmm.mesh import shapes
from deep3dmm.mesh.hierarchy import MeshHierarchy
from deep3dmm.nn import MeshAutoencoder

onnx = pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")

TOLERANCE = 1e-5  # normalised units
PRESETS = list(itertools.product(("spiral", "cheb"), ("fixed", "attention")))
STANDARD_OPS = {
    "Add", "Concat", "Constant", "Elu", "Gather", "Gemm", "Identity", "MatMul", "Mul",
    "ReduceSum", "Reshape", "Shape", "Sub", "Unsqueeze",
}  # fmt: skip


@pytest.fixture(scope="module")
def hierarchy():
    """Icosphere(1): 42 -> 21 -> 11 vertices."""
    return MeshHierarchy.build(shapes.icosphere(1), factors=(2, 2), spiral_length=7)


def _model(hierarchy, conv, pool):
    torch.manual_seed(3)
    model = MeshAutoencoder.build(
        hierarchy, conv=conv, pool=pool, latent=5, channels=(8, 16), K=3, top_k=(4, 8)
    )
    with torch.no_grad():  # non-zero biases and fused weights, so every term shows
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def _export(model, hierarchy, out, fmt, dense_max=None):
    v = hierarchy.num_vertices[0]
    extra = {} if dense_max is None else {"dense_max": dense_max}
    rng = np.random.default_rng(0)
    export_model(
        model, hierarchy, out, format=fmt, check=False,
        mean=rng.normal(size=(v, 3)), std=rng.uniform(0.5, 2, size=(v, 3)),
        faces=hierarchy.faces[0], template=hierarchy.vertices[0], **extra,
    )  # fmt: skip
    return load(out)


@pytest.mark.parametrize(("conv", "pool"), PRESETS)
@pytest.mark.parametrize(("fmt", "dense_max"), [("onnx", None), ("onnx", 0), ("torchscript", 0)])
def test_parity_with_live_model(hierarchy, tmp_path, conv, pool, fmt, dense_max):
    model = _model(hierarchy, conv, pool)
    exported = _export(model, hierarchy, tmp_path / "out", fmt, dense_max)
    v = hierarchy.num_vertices[0]
    for batch in (1, 7):
        x = torch.randn(batch, v, 3)
        z = torch.randn(batch, 5)
        with torch.no_grad():
            codes, meshes = model.encode(x).numpy(), model.decode(z).numpy()
        got_codes = exported.encode(x.numpy(), normalized=True)
        got_meshes = exported.decode(z.numpy(), normalized=True)
        assert got_codes.shape == (batch, 5) and got_meshes.shape == (batch, v, 3)
        assert np.abs(got_codes - codes).max() <= TOLERANCE
        assert np.abs(got_meshes - meshes).max() <= TOLERANCE
    if fmt == "onnx":
        path = tmp_path / "out" / "autoencoder.onnx"
        graph = onnx.load(path)
        onnx.checker.check_model(graph, full_check=True)
        assert graph.opset_import[0].version >= 17
        assert {n.op_type for n in graph.graph.node} <= STANDARD_OPS
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = torch.randn(7, v, 3)
        (recon,) = session.run(None, {"vertices": x.numpy()})
        with torch.no_grad():
            assert np.abs(recon - model(x).numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_pca_model_exports(hierarchy, tmp_path, fmt):
    from deep3dmm.nn import PCAModel

    v = hierarchy.num_vertices[0]
    model = PCAModel(v, 5)
    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3 * v, 5, generator=generator))
    model.components.copy_(q.T)  # orthonormal rows
    model.mean.copy_(0.1 * torch.randn(3 * v, generator=generator))
    model.scale.copy_(torch.rand(3 * v, generator=generator) + 0.5)
    exported = _export(model, hierarchy, tmp_path / "pca", fmt)
    x, z = torch.randn(7, v, 3), torch.randn(7, 5)
    with torch.no_grad():
        assert (
            np.abs(exported.encode(x.numpy(), normalized=True) - model.encode(x).numpy()).max()
            <= TOLERANCE
        )
        assert (
            np.abs(exported.decode(z.numpy(), normalized=True) - model.decode(z).numpy()).max()
            <= TOLERANCE
        )


def test_dense_and_table_forms_agree_with_scipy():
    rng = np.random.default_rng(1)
    import scipy.sparse as sp

    matrix = sp.random(9, 13, density=0.3, random_state=2, format="lil")
    matrix[4] = 0  # an empty row pads with zero weights
    matrix = matrix.tocsr()
    x = torch.from_numpy(rng.normal(size=(3, 13, 2)).astype(np.float32))
    expected = np.einsum("rn,bnc->brc", matrix.toarray(), x.numpy())
    for op in (NeighbourSum(matrix), DenseMap(matrix)):
        assert np.allclose(op(x).numpy(), expected, atol=1e-6)
    widths = NeighbourSum(matrix).widths  # rows grouped by entry count (powers of two)
    assert max(widths) == np.diff(matrix.indptr).max() and len(widths) > 1


def test_live_model_is_not_frozen_by_export(hierarchy):
    model = _model(hierarchy, "spiral", "attention")
    ExportableAutoencoder.from_model(model, hierarchy)
    assert not model.frozen


def test_model_json_describes_the_folder(hierarchy, tmp_path):
    model = _model(hierarchy, "cheb", "attention")
    exported = _export(model, hierarchy, tmp_path / "out", "onnx")
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["latent_size"] == 5 and meta["num_vertices"] == 42 and meta["opset"] >= 17
    assert set(meta["parts"]) == {"encoder", "decoder", "autoencoder"}
    assert meta["parts"]["decoder"]["inputs"][0] == {
        "name": "latent", "shape": ["batch", 5], "dtype": "float32", "units": "latent code"
    }  # fmt: skip
    assert meta["to_millimetres"] == 1000.0 and meta["unit"] == "m"
    assert np.array_equal(exported.vertices, hierarchy.vertices[0].astype(np.float32))
    with pytest.raises(Exception, match="decode expected codes"):
        exported.decode(np.zeros((1, 4)))
