"""The viewer's HTTP API on a trained run: answers, 400s, no file access, still serving."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse

import numpy as np

from deep3dmm.analysis.latent import decode as torch_decode
from deep3dmm.cli import main
from deep3dmm.train import load_run
from deep3dmm.viewer import slider_basis


def _request(url, method, path, body=None):
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    payload = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    connection.request(method, path, body=payload)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, json.loads(data) if kind.startswith("application/json") else data


def test_binds_localhost_and_serves_the_page(viewer_url):
    assert viewer_url.startswith("http://localhost:")
    status, page = _request(viewer_url, "GET", "/")
    assert status == 200 and b"importmap" in page
    status, module = _request(viewer_url, "GET", "/vendor/three/build/three.module.js")
    assert status == 200 and b"three.core.js" in module


def test_decode_matches_pytorch(viewer_url, trained_run_dir):
    status, info = _request(viewer_url, "GET", "/api/info")
    assert status == 200 and info["latent_size"] == 4 and info["dataset"] == {"count": 12}
    code = (np.array(info["sliders"]["center"]) + np.array(info["sliders"]["basis"][1])).tolist()
    status, answer = _request(viewer_url, "POST", "/api/decode", {"code": code})
    assert status == 200
    expected = torch_decode(load_run(trained_run_dir), np.array([code], np.float32))[0]
    assert np.abs(np.reshape(answer["vertices"], (-1, 3)) - expected).max() <= 1e-7


def test_reconstruction_errors_in_mm(viewer_url, trained_run_dir):
    status, answer = _request(viewer_url, "POST", "/api/reconstruct", {"id": 3})
    assert status == 200 and answer["label"].startswith("#3 ")
    run = load_run(trained_run_dir)
    truth = np.asarray(run.open_dataset().vertices[3], np.float64)
    recon = np.reshape(answer["vertices"], (-1, 3))
    errors = np.linalg.norm(recon - truth, axis=1) * 1000.0  # dataset in metres
    assert np.allclose(answer["errors_mm"], errors, atol=1e-4)
    assert abs(answer["mean_mm"] - errors.mean()) < 1e-4


def test_bad_requests_get_400_and_server_keeps_running(viewer_url):
    cases = [
        ("/api/decode", {"code": [1.0, 2.0]}, "code must hold 4 numbers"),
        ("/api/decode", {"code": "abc"}, "code must"),
        ("/api/decode", {"code": [1, 2, 3, float("nan")]}, "non-finite"),
        ("/api/encode", {"id": 99}, "out of range"),
        ("/api/encode", {"id": "../../etc/passwd"}, "id must be a dataset row number"),
        ("/api/reconstruct", {"id": -1}, "id must be a dataset row number"),
        ("/api/decode", b"{not json", "malformed JSON"),
    ]
    for path, body, message in cases:
        status, answer = _request(viewer_url, "POST", path, body)
        assert status == 400 and message in answer["error"], (path, body, answer)
    paths = ["/../pyproject.toml", "/vendor/three/../../../pyproject.toml", "/etc/passwd",
             "/vendor/three/package.json", "/node_modules/three/build/three.module.js"]  # fmt: skip
    for path in paths:
        status, _ = _request(viewer_url, "GET", path)
        assert status == 404, path
    status, _ = _request(viewer_url, "GET", "/api/info")
    assert status == 200


def test_slider_basis_dims_and_pca():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5]
    dims = slider_basis(codes)
    assert dims["mode"] == "dims" and np.allclose(np.diag(dims["basis"]), codes.std(0))
    big = rng.normal(size=(400, 40)) @ rng.normal(size=(40, 40))
    pca = slider_basis(big, max_sliders=8)
    assert pca["mode"] == "pca" and pca["basis"].shape == (8, 40)
    gram = pca["basis"] @ pca["basis"].T  # orthogonal rows, lengths = principal std
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-8)
    variance = np.linalg.eigvalsh(np.cov(big.T, bias=True))[::-1][:8]
    assert np.allclose(np.diag(gram), variance, rtol=1e-6)


def test_missing_run_exits_2(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope"), "--port", "0"]) == 2
    assert "not a complete run folder" in capsys.readouterr().err
