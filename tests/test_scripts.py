"""scripts/benchmark.py, scripts/study.py and the train_*.sh scripts: tiny runs of each."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
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


def test_flops_per_mesh_executed_counts_the_shortcuts(small_hierarchy):
    """Executed: encoder convs at the kept rows without D; decoder U fused (coarse matmul +
    composite bag sum); the nominal count is unchanged by the option for attention models."""
    from deep3dmm.nn import MeshAutoencoder

    bench = _load("benchmark")
    h = small_hierarchy
    model = MeshAutoencoder.build(h, conv="spiral", pool="fixed", channels=(8, 8, 8, 16), latent=4)
    n, length = h.num_vertices, 9
    ch = [3, 8, 8, 8, 16]
    # D selects: the encoder conv runs at the n[i+1] kept rows, and D costs nothing
    expected = sum(2 * n[i + 1] * length * ch[i] * ch[i + 1] for i in range(4))
    expected += 2 * 2 * n[4] * 16 * 4  # to/from latent
    dec_in = [8, 8, 16, 16]
    for i in range(4):  # Z = x W_r on level i+1, then the composite matrix M (V_i, V_{i+1} L)
        spirals = np.asarray(h.spirals[i])
        composite = np.diff(h.up[i].tocsr().indptr)[spirals].sum()
        expected += 2 * n[i + 1] * dec_in[i] * length * ch[i + 1] + 2 * composite * ch[i + 1]
    expected += 2 * n[0] * length * 8 * 3  # output conv (no shortcut)
    assert bench.flops_per_mesh(model, batch=4, executed=True) == pytest.approx(expected)
    assert bench.flops_per_mesh(model, batch=4, executed=True) < bench.flops_per_mesh(
        model, batch=4
    )
    attention = MeshAutoencoder.build(
        h, conv="spiral", pool="attention", channels=(8, 8, 8, 16), latent=4
    )
    assert bench.flops_per_mesh(attention, batch=4, executed=True) == pytest.approx(
        bench.flops_per_mesh(attention, batch=4)
    )


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


def test_benchmark_saved_rows_later_file_wins(tmp_path):
    """--rows: a JSON list and a log's JSON lines; a section in a later file replaces it."""
    bench = _load("benchmark")
    first = tmp_path / "rows.json"
    first.write_text(json.dumps([{"section": "peak", "gflops": 1.0}, {"section": "data", "x": 1}]))
    log = tmp_path / "run.log"
    log.write_text(
        'noise\n{"section": "peak", "gflops": 2.0}\n{"variant": "no section"}\n{broken\n'
    )
    rows, names = bench.saved_rows([str(first), str(log)])
    assert names == ["peak", "data"]
    assert rows == [{"section": "peak", "gflops": 2.0}, {"section": "data", "x": 1}]


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
    assert "1 of 5 runs finished" in text and "not run yet" in text


def test_study_reading_on_synthetic_rows():
    """The generated reading names the winner, the margin and where PCA wins."""
    reading = _load("study_reading")
    Result = reading.Result
    labels = {"pca": "PCA", "coma": "COMA", "deep3dmm-spiral": "D-spiral"}
    datasets = {"faces": "faces", "hands": "hands"}
    rows = [
        Result("faces", "pca", 8, 1.2),
        Result("faces", "coma", 8, 1.5, 40, True, 400.0),
        Result("faces", "deep3dmm-spiral", 8, 1.0, 60, False, 1200.0),
        Result("faces", "pca", 16, 0.1),
        Result("faces", "deep3dmm-spiral", 16, 0.8, 30, True, 600.0),
        Result("hands", "coma", 16, 2.0, 10, True, 100.0),  # no PCA: no deep-vs-linear cell
        Result("hands", "deep3dmm-spiral", 16, 2.5, 10, True, 100.0),
    ]
    lines = reading.winners(rows, labels, datasets)
    assert lines[0].startswith("- faces, latent 8: **D-spiral** wins with 1.000 mm (stopped by "
                               "the epoch cap, not converged), by 20.0 % over PCA (1.200 mm)")
    assert "PCA 1.200 mm is 20.0 % above it" in lines[0]
    assert "Order: D-spiral 1.000 < PCA 1.200 < COMA 1.500." in lines[0]
    assert lines[1].startswith("- faces, latent 16: **PCA** wins with 0.100 mm, by 8.0x")
    assert "the best deep model is 8.0x above PCA" in lines[1]
    assert lines[2].startswith("- hands, latent 16: **COMA** wins with 2.000 mm, by 25.0 %")
    summary = "\n".join(reading.deep_vs_linear(rows, datasets))
    assert "beats PCA in **1 of 2** dataset/latent cells" in summary
    assert "Deep models win at: faces latent 8 (1.000 vs 1.200 mm, PCA 20.0 % higher)" in summary
    assert "**PCA wins** at: faces latent 16 (0.100 vs 0.800 mm, best deep 8.0x higher)" in summary
    text = reading.published_addition(rows, 300)
    # (300-40)*10 + (300-60)*20 + (300-30)*20 + 2*(300-10)*10 s = 18,600 s = 5.2 h
    assert "would add about 5.2 h" in text and "4 of 5 stopped" in text
    exact = reading.winners([Result("faces", "pca", 32, 1e-5), Result("faces", "coma", 32, 1.0)],
                            labels, datasets)  # fmt: skip
    assert "wins with 0.000 mm, by an exact reconstruction (< 0.001 mm) over COMA" in exact[0]


# ------------------------------------------------------------------ published-configuration scripts
# scripts/train_{coma,dfaust,hands}.sh end to end on small trees in each dataset's real layout
# (icosphere meshes of 162 vertices standing in for the real templates), one epoch per run.
FRAMES = 12


def _motion(subjects, sequences, *, radius):
    """{(subject, sequence, frame): (162, 3) float32}: per-subject shape, per-sequence motion
    (a smooth bump along a sequence-specific direction, neutral -> peak -> neutral)."""
    from deep3dmm.mesh import shapes

    vertices, faces = shapes.icosphere(2, radius=radius)
    rng = np.random.default_rng(0)
    meshes = {}
    for s, subject in enumerate(subjects):
        shape = vertices * (1.0 + 0.1 * rng.standard_normal(3))
        for q, sequence in enumerate(sequences):
            direction = np.eye(3)[q % 3]
            for t in range(FRAMES):
                peak = np.sin(np.pi * t / (FRAMES - 1)) * (0.2 + 0.05 * s)
                bump = peak * np.exp(-4.0 * (1.0 - vertices @ direction / radius))
                meshes[(subject, sequence, t)] = (shape * (1.0 + bump[:, None])).astype(np.float32)
    return meshes, faces


def _script_env(tmp_path):
    env = dict(os.environ, EPOCHS="1", PREPARED=str(tmp_path / "prepared"),
               RUNS=str(tmp_path / "runs"), DEEP3DMM_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               TRAIN_ARGS="--device cpu --quiet", DEEP3DMM_SKIP_SETUP="1")  # fmt: skip
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _run_script(name, data, env):
    return subprocess.run(["bash", str(SCRIPTS / f"train_{name}.sh"), str(data)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


RUN_NAMES = ("coma", "deep3dmm-spectral", "neural3dmm", "deep3dmm-spiral", "pca-8", "pca-16")


def _check_runs_and_table(tmp_path, meshes):
    from deep3dmm.data import PreparedDataset

    dataset = PreparedDataset(tmp_path / "prepared")
    assert len(dataset) == len(meshes)
    keys = [(r.subject, r.sequence, r.frame) for r in dataset.index]
    np.testing.assert_array_equal(np.asarray(dataset.vertices),
                                  np.stack([meshes[k] for k in keys]))  # fmt: skip
    table = (tmp_path / "runs" / "compare.md").read_text().splitlines()
    assert len(table) == 2 + len(RUN_NAMES)
    for name, line in zip(RUN_NAMES, table[2:]):
        evaluation = json.loads((tmp_path / "runs" / name / "eval" / "test.json").read_text())
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == name and cells[9] == f"{evaluation['mean_mm']:.3f}"
        assert cells[6] == "1"  # one epoch (EPOCHS=1), or the closed-form fit
    return table


def _fake_venv(tmp_path):
    """A .venv stand-in whose python logs pip calls and runs everything else for real."""
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    log = tmp_path / "pip.log"
    (venv / "python").write_text(
        f'#!/usr/bin/env bash\nif [ "$1" = -m ] && [ "$2" = pip ]; then echo "$@" >> {log}; '
        f'exit 0; fi\nexec {sys.executable} "$@"\n'
    )
    (venv / "deep3dmm").write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -m deep3dmm "$@"\n')
    for path in venv.iterdir():
        path.chmod(0o755)
    return venv.parent, log


@pytest.mark.slow
def test_train_coma_script_on_a_coma_tree(tmp_path):
    """COMA layout FaceTalk_<subject>/<expr>/<expr>.<frame:06d>.ply; the .venv setup path
    runs too (with a fake venv): pip must get no DATA_ROOT as extras (the old crash)."""
    from deep3dmm.mesh import write_mesh

    subjects = ["FaceTalk_170725_00137_TA", "FaceTalk_170904_00128_TA"]
    meshes, faces = _motion(subjects, ["bareteeth", "mouth_up"], radius=0.1)  # metres
    for (subject, expr, t), v in meshes.items():
        write_mesh(tmp_path / "COMA" / subject / expr / f"{expr}.{t + 1:06d}.ply", v, faces)
    meshes = {(s, q, t + 1): v for (s, q, t), v in meshes.items()}  # frames from the names
    env = _script_env(tmp_path)
    env.pop("DEEP3DMM_SKIP_SETUP")
    env["DEEP3DMM_VENV"], pip_log = _fake_venv(tmp_path)
    out = _run_script("coma", tmp_path / "COMA", env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "install" in pip_log.read_text() and "[" not in pip_log.read_text()
    _check_runs_and_table(tmp_path, meshes)


@pytest.mark.slow
def test_train_dfaust_script_on_registrations_hdf5(tmp_path):
    """DFAUST layout: registrations_m.hdf5 with faces and <subjectid>_<sequence> (V, 3, T)."""
    import h5py

    meshes, faces = _motion(["50002", "50004"], ["chicken_wings", "punching"], radius=0.5)
    (tmp_path / "DFAUST").mkdir()
    with h5py.File(tmp_path / "DFAUST" / "registrations_m.hdf5", "w") as handle:
        handle["faces"] = faces.astype(np.int32)
        for subject in ("50002", "50004"):
            for sequence in ("chicken_wings", "punching"):
                handle[f"{subject}_{sequence}"] = np.stack(
                    [meshes[(subject, sequence, t)] for t in range(FRAMES)], axis=-1
                )  # (V, 3, T)
    out = _run_script("dfaust", tmp_path / "DFAUST", _script_env(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _check_runs_and_table(tmp_path, meshes)


@pytest.mark.slow
def test_train_hands_script_on_a_hands_folder(tmp_path):
    """Hands layout DATA_ROOT/<subject>/<sequence>/<name><frame>.ply, millimetres."""
    from deep3dmm.mesh import write_mesh

    meshes, faces = _motion(["subject01", "subject02"], ["fist", "spread"], radius=60.0)
    for (subject, sequence, t), v in meshes.items():
        write_mesh(tmp_path / "hands" / subject / sequence / f"frame{t:04d}.ply", v, faces)
    out = _run_script("hands", tmp_path / "hands", _script_env(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _check_runs_and_table(tmp_path, meshes)
    assert json.loads((tmp_path / "prepared" / "meta.json").read_text())["unit"] == "mm"
