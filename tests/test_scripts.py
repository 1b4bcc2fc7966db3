"""scripts/benchmark.py and scripts/study.py: tiny runs of each, and the naive reference."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def small_hierarchy():
    from deep3dmm.mesh import Template, shapes
    from deep3dmm.mesh.hierarchy import MeshHierarchy

    template = Template(*shapes.icosphere(3))
    return MeshHierarchy.build(template, factors=(4, 4, 4, 4), spiral_length=9, seed=0)


@pytest.mark.parametrize("conv", ["spiral", "cheb"])
@pytest.mark.parametrize("pool", ["fixed", "attention", "frozen", "learned"])
def test_naive_reference_matches_the_model(small_hierarchy, conv, pool):
    """The benchmark's naive reference (dense D/U, per-call indices) computes the same map."""
    from deep3dmm.nn import MeshAutoencoder

    bench = _load("benchmark")
    torch.manual_seed(0)
    kwargs = dict(conv=conv, channels=(8, 8, 8, 16), latent=4, top_k=(4, 8))
    if pool == "learned":
        kwargs["attention_mode"] = "learned"
    model = MeshAutoencoder.build(
        small_hierarchy, pool="fixed" if pool == "fixed" else "attention", **kwargs
    )
    if pool == "frozen":
        model.freeze_pooling()
    model = model.double()  # float64: the two summation orders agree to round-off
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3, dtype=torch.float64)
    naive = bench.NaiveReference(model)
    torch.testing.assert_close(naive(x), model(x), rtol=1e-9, atol=1e-10)
    if pool in ("attention", "learned"):  # the gradients reach the same parameters
        params = [p for p in model.parameters()]
        g_model = torch.autograd.grad(model(x).square().sum(), params)
        g_naive = torch.autograd.grad(naive(x).square().sum(), params)
        for a, b in zip(g_naive, g_model):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


def test_flops_per_mesh_spiral_conv_closed_form(small_hierarchy):
    """A spiral/fixed model's count equals the sum of its layers' closed forms."""
    from deep3dmm.nn import MeshAutoencoder

    bench = _load("benchmark")
    model = MeshAutoencoder.build(
        small_hierarchy, conv="spiral", pool="fixed", channels=(8, 8, 8, 16), latent=4
    )
    n, length = small_hierarchy.num_vertices, 9
    ch = [3, 8, 8, 8, 16]
    expected = sum(2 * n[i] * length * ch[i] * ch[i + 1] for i in range(4))  # encoder convs
    expected += sum(2 * small_hierarchy.down[i].nnz * ch[i + 1] for i in range(4))  # pools
    expected += 2 * 2 * n[4] * 16 * 4  # to/from latent
    dec_in = [8, 8, 16, 16]  # decoder at level l: up-pool, then conv C_{l+1} -> C_l
    expected += sum(2 * small_hierarchy.up[i].nnz * dec_in[i] for i in range(4))
    expected += sum(2 * n[i] * length * dec_in[i] * ch[i + 1] for i in range(4))
    expected += 2 * n[0] * length * 8 * 3  # output conv
    assert bench.flops_per_mesh(model, batch=4) == pytest.approx(expected)


def test_benchmark_quick_peak_section(tmp_path):
    out = _run(
        str(SCRIPTS / "benchmark.py"), "--quick", "--sections", "peak",
        "--json", str(tmp_path / "rows.json"), "--docs", str(tmp_path / "bench.md"),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows[0]["section"] == "peak" and rows[0]["gflops"] > 0
    text = (tmp_path / "bench.md").read_text()
    assert "GFLOP/s" in text and "Load average" in text and "logical CPUs" in text


def test_benchmark_unknown_section(tmp_path):
    out = _run(str(SCRIPTS / "benchmark.py"), "--quick", "--sections", "nope", cwd=tmp_path)
    assert out.returncode == 2 and "unknown section" in out.stderr


@pytest.mark.slow
def test_study_tiny_run_report_and_resume(tmp_path):
    root, docs = tmp_path / "study", tmp_path / "results.md"
    args = [str(SCRIPTS / "study.py"), "--tiny", "--root", str(root), "--docs", str(docs),
            "--quiet"]  # fmt: skip
    out = _run(*args, "--only", "faces/latent16/spiralnet++", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = root / "faces" / "latent16" / "spiralnet++"
    evaluation = json.loads((run / "eval" / "test.json").read_text())
    text = docs.read_text()
    assert f"{evaluation['mean_mm']:.3f}" in text  # the table comes from the stored evaluation
    assert "1 of 1 runs finished" in text
    again = _run(*args, "--only", "faces/latent16/spiralnet++", cwd=tmp_path)
    assert "1 of 1 runs finished, 0 to go" in again.stdout
    report = _run(*args, "--only", "faces/latent16/", "--report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = docs.read_text()
    assert "1 of 4 runs finished" in text and "not run yet" in text
