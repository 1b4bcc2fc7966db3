#!/usr/bin/env python
"""Speed and memory benchmarks of deep3dmm, one function per section.

Sections:
    peak       the machine's float32 matmul throughput (GFLOP/s), the yardstick of the model
               section's achieved GFLOP/s.
    hierarchy  mesh hierarchy build and cache-load time (COMA and SMPL templates from
               ../shared/data when present, procedural grids of the same size otherwise).
    model      train step (forward + L1 loss + backward + Adam) and inference of the mesh
               autoencoder, spiral/cheb x fixed/attention/attention-frozen, on the COMA template
               hierarchy (5023 vertices, factors 4,4,4,4, spiral length 9), batch 32; analytic
               FLOPs per mesh; and the outputs of a naive reference written here the way the
               original code does it (Neural3DMM spirals, dense D/U, PyG-style Chebyshev,
               dense attention), sharing the parameters: a correctness oracle, not timed.
    peer       SpiralNet++'s own published code (../shared/peers/spiralnet_plus) beside the
               spiral/fixed model, same hierarchy and weights, steps alternating in one
               process: the speed yardstick (benchmark_scale.py).
    scaling    fixed vs attention pooling at 5k, 20k and 80k vertices (the COMA template
               subdivided here), batch 4, one subprocess per configuration (peak RSS).
    data       COMA-layout import (meshes/s) and loading through the DataLoader from a
               prepared dataset (meshes/s), to show loading is never the bottleneck.
    export     (optional, only with --sections export) onnxruntime vs PyTorch inference of
               the exported autoencoder, batch 1 and 32 (scripts/benchmark_export.py).
    fitting    (optional, only with --sections fitting) time per fit of a model to a
               registered mesh, scan, partial scan and landmarks on the COMA template
               (benchmarks/fitting.py).

Usage:
    python scripts/benchmark.py                       # all sections, writes docs/benchmarks.md
    python scripts/benchmark.py --quick               # a smoke run (< 1 min), no docs
    python scripts/benchmark.py --sections model --variants spiral/fixed
    python scripts/benchmark.py --device cuda --json results.json

Timings are medians over repeats (after warm-up) with ``torch.set_num_threads(--threads)``;
on a shared machine they are contended: the docs page records the load average at the start
and the end of the run and says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_scale import (  # noqa: E402
    add_arguments,
    inference,
    section_peer,
    section_scaling,
    shared_data,
    train_step,
)

from deep3dmm.testing import NaiveReference  # noqa: E402  (correctness oracle, not a yardstick)

SHARED = shared_data()  # <repo>/../shared/data, or $DEEP3DMM_SHARED/data, or /work/shared/data

log = logging.getLogger("benchmark")


# ---------------------------------------------------------------------------------- helpers
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, *, repeats: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """Median wall-clock and median process-CPU seconds of ``fn()`` after ``warmup`` runs.

    The CPU time (all threads of this process) is the contention-robust figure on a shared
    machine; on a quiet one, wall time is what users see.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def interleaved_ratio(baseline, other, *, repeats: int, warmup: int, device) -> float:
    """Median over rounds of ``time(other()) / time(baseline())``, the two run alternately.

    Timing two variants one after the other lets a drift of the machine (another job, the
    clock) land on one of them; alternating them round by round puts it on both, so the ratio
    of a pair of variants is steadier than the ratio of two separate medians.
    """
    for _ in range(warmup):
        baseline()
        other()
    sync(device)
    ratios = []
    for _ in range(repeats):
        seconds = []
        for fn in (baseline, other):
            start = time.perf_counter()
            fn()
            sync(device)
            seconds.append(time.perf_counter() - start)
        ratios.append(seconds[1] / seconds[0])
    return statistics.median(ratios)


def benchmark_hierarchy(quick: bool):
    """The COMA template hierarchy (--quick, or without shared data: an icosphere)."""
    from deep3dmm.mesh import Template, shapes
    from deep3dmm.mesh.hierarchy import MeshHierarchy

    coma = SHARED / "templates" / "coma_template.obj"
    if not quick and coma.is_file():
        template, name = Template.load(coma), "COMA template"
    else:
        template, name = Template(*shapes.icosphere(3 if quick else 5)), "icosphere"
    hierarchy = MeshHierarchy.cached(
        template, factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1, seed=0
    )
    return hierarchy, name


# ---------------------------------------------------------------------------------- FLOPs
def _nnz(module, name: str) -> int:
    return int(getattr(module, f"{name}_col").numel())


def flops_per_mesh(model, batch: int, *, executed: bool = False) -> float:
    """Analytic forward FLOPs per mesh (multiply-add = 2 FLOPs) of a ``MeshAutoencoder``.

    Counted per layer from the input shapes seen by forward hooks on one mesh:
    spiral conv ``2 V L C_in C_out``; Chebyshev conv ``2 (K-1) nnz(L) C_in`` (recursion) +
    ``2 V K C_in C_out`` (mixing); pooling ``2 nnz(M) C`` (attention: prior + ``k`` per row,
    plus its scores ``2 d V_out V_in`` per step, divided by ``batch``); linear layers
    ``2 n_in n_out``. Activations, biases and top-k selection are not counted; a training
    step is taken as 3x the forward.

    By default the count is the model's nominal math: every layer as defined, so variants
    compare. Spiral convs beside fixed pooling run exact shortcuts that do less work (the
    encoder's conv at the rows D keeps only, without D; the decoder's U fused into the next
    conv: ``Z = x W_r`` on the coarse level, ``2 V_c C_in L C_out``, then one bag sum over the
    composite matrix, ``2 nnz(M) C_out``); with ``executed`` those are counted as run, the
    work the achieved GFLOP/s must be measured against.
    """
    from deep3dmm.nn import AttentionPool, ChebConv, FixedPool, SpiralConv

    total = [0.0]

    def hook(module, inputs, _output):
        x = inputs[0]
        v, c = x.shape[1], x.shape[-1]
        if isinstance(module, SpiralConv):
            rows = inputs[1] if len(inputs) > 1 else None
            if executed and rows is not None:
                v = rows.numel()
            total[0] += 2.0 * v * module.spiral_length * c * module.out_channels
        elif isinstance(module, ChebConv):
            nnz = _nnz(module, "laplacian")
            total[0] += (
                2.0 * (module.K - 1) * nnz * c + 2.0 * v * module.K * c * module.out_channels
            )
        elif isinstance(module, FixedPool):
            total[0] += 2.0 * _nnz(module, "matrix") * c
        elif isinstance(module, AttentionPool):
            if module.frozen:
                total[0] += 2.0 * _nnz(module, "frozen") * c
            elif module.mode == "prior":
                total[0] += 2.0 * _nnz(module, "prior") * c
            else:
                prior = _nnz(module, "prior") if module.mode == "fused" else 0
                nnz = prior + module.out_vertices * module.top_k
                scores = 2.0 * module.dim * module.out_vertices * module.in_vertices
                total[0] += 2.0 * nnz * c + scores / batch
        elif isinstance(module, nn.Linear):
            total[0] += 2.0 * module.in_features * module.out_features

    kinds = (SpiralConv, ChebConv, FixedPool, AttentionPool, nn.Linear)
    handles = [
        m.register_forward_hook(hook)
        for name, m in model.named_modules()
        if isinstance(m, kinds) and not name.endswith(".linear")  # SpiralConv's own Linear
    ]
    try:
        device = next(model.buffers()).device
        with torch.inference_mode():
            model(torch.zeros(1, model.num_vertices[0], 3, device=device))
    finally:
        for h in handles:
            h.remove()
    # The shortcuts skip module calls (encoder: no D call; decoder: no U call, no conv call).
    for conv, pool in zip(model.encoder_convs, model.down_pools):
        if isinstance(conv, SpiralConv) and isinstance(pool, FixedPool) and not executed:
            total[0] += 2.0 * _nnz(pool, "matrix") * conv.out_channels
    for pool, conv in zip(model.up_pools, model.decoder_convs):
        if isinstance(conv, SpiralConv) and isinstance(pool, FixedPool):
            c_in, c_out, length = conv.in_channels, conv.out_channels, conv.spiral_length
            if executed:
                row_nnz = pool.matrix_crow.diff()  # (V_f,) entries of each row of U
                composite = int(row_nnz[conv.spirals.reshape(-1)].sum())  # nnz(M)
                total[0] += 2.0 * pool.in_vertices * c_in * length * c_out
                total[0] += 2.0 * composite * c_out
            else:
                total[0] += 2.0 * _nnz(pool, "matrix") * c_in
                total[0] += 2.0 * pool.out_vertices * length * c_in * c_out
    return total[0]


_PEAK: dict[str, float] = {}


def matmul_peak_gflops(device: torch.device, quick: bool) -> tuple[float, int]:
    """Median float32 GFLOP/s of one large square matmul (``2 n^3`` FLOPs); cached per run."""
    n = (1024 if quick else 2048) if device.type == "cpu" else 8192
    key = f"{device}-{n}"
    if key not in _PEAK:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        wall, _ = timed(lambda: a @ b, repeats=3 if quick else 7, warmup=1, device=device)
        _PEAK[key] = 2.0 * n**3 / wall / 1e9
    return _PEAK[key], n


# ---------------------------------------------------------------------------------- sections
def section_peak(args) -> list[dict]:
    """The machine's float32 matmul peak."""
    device = torch.device(args.device)
    gflops, n = matmul_peak_gflops(device, args.quick)
    row = dict(section="peak", what=f"float32 matmul {n}x{n} @ {n}x{n}", device=str(device),
               threads=torch.get_num_threads(), gflops=round(gflops, 1))  # fmt: skip
    print(json.dumps(row), flush=True)
    return [row]


def section_hierarchy(args) -> list[dict]:
    """Hierarchy build and warm-cache load time on the COMA and SMPL templates."""
    sys.path.insert(0, str(ROOT))  # the repository's benchmarks/
    from benchmarks.hierarchy import benchmark_hierarchy
    from deep3dmm.mesh import Template, shapes

    templates = [("COMA", SHARED / "templates" / "coma_template.obj", (71, 71))]
    if not args.quick:
        templates.append(("SMPL", SHARED / "templates" / "smpl_man.obj", (83, 83)))
    repeats = 1 if args.quick else 5
    rows = []
    for name, path, grid in templates:
        if path.is_file():
            template, what = Template.load(path), f"{name} {path.name}"
        else:  # a procedural mesh of about the same size
            template = Template(*shapes.grid(*grid))
            what = f"grid {grid[0]}x{grid[1]} (in place of {name}: {path} absent)"
        for params in (dict(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1),):
            result = benchmark_hierarchy(template, repeats=repeats, **params)
            row = dict(
                section="hierarchy",
                template=what,
                levels=",".join(str(v) for v in result["num_vertices"]),
                build_s=round(result["build_s"], 3),
                cached_load_s=round(result["cached_load_s"], 4),
                repeats=result["repeats"],
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def section_model(args) -> list[dict]:
    """Autoencoder train/inference speed: spiral/cheb x fixed/attention/attention-frozen,
    ours and the naive reference."""
    from deep3dmm.nn import MeshAutoencoder

    device = torch.device(args.device)
    hierarchy, name = benchmark_hierarchy(args.quick)
    batch = args.batch or (8 if args.quick else 32)
    repeats, warmup = (3, 2) if args.quick else (args.repeats, 2)
    backbones = {
        "spiral": dict(conv="spiral", channels=(32, 32, 32, 64), latent=16),
        "cheb": dict(conv="cheb", channels=(16, 16, 16, 32), latent=8, K=6),
    }
    pools = {"fixed": "fixed", "attention": "attention", "attention-frozen": "attention"}
    selected = args.variants.split(",") if args.variants else None
    peak, _ = matmul_peak_gflops(device, args.quick)
    torch.manual_seed(0)
    data = torch.randn(batch, hierarchy.num_vertices[0], 3, device=device) * 0.1
    rows = []
    print(
        f"# model: {name} {hierarchy.num_vertices}, batch {batch}, device {device}, "
        f"threads {torch.get_num_threads()}, repeats {repeats} (median), "
        f"reuse_freed_memory {not args.no_reuse_memory}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    variants = [
        (f"{conv}/{pool_name}", conv, pool_name)
        for conv in backbones
        for pool_name in pools
        if not selected or f"{conv}/{pool_name}" in selected
    ]

    def build(conv: str, pool_name: str):
        torch.manual_seed(0)  # the same parameters for ours and the naive pass
        model = MeshAutoencoder.build(hierarchy, pool=pools[pool_name], **backbones[conv])
        model = model.to(device)
        params = sum(p.numel() for p in model.parameters())
        if pool_name == "attention-frozen":
            model.freeze_pooling()
        return model, params

    by_variant = {}
    for variant, conv, pool_name in variants:  # ours first: peak RSS not raised by the naive
        model, params = build(conv, pool_name)
        nominal = flops_per_mesh(model, batch)
        flops = flops_per_mesh(model, batch, executed=True)  # the yardstick of GFLOP/s
        row = dict(section="model", variant=variant, vertices=hierarchy.num_vertices[0],
                   batch=batch, params=sum(p.numel() for p in model.parameters()),
                   mflop_mesh=round(nominal / 1e6, 1),
                   mflop_executed=round(flops / 1e6, 1))  # fmt: skip
        if pool_name != "attention-frozen":
            row["params"] = params
            wall, cpu = timed(train_step(model, data), repeats=repeats, warmup=warmup,
                              device=device)  # fmt: skip
            row.update(
                train_ms=round(wall * 1e3, 1),
                train_meshes_s=round(batch / wall, 1),
                train_cpu_ms=round(cpu * 1e3, 1),
                train_gflops=round(3 * flops * batch / wall / 1e9, 2),
                train_peak_pct=round(300 * flops * batch / wall / 1e9 / peak, 1),
            )
        model.eval()
        wall, cpu = timed(inference(model, data), repeats=repeats, warmup=warmup, device=device)
        row.update(
            infer_ms=round(wall * 1e3, 1),
            infer_ms_mesh=round(wall * 1e3 / batch, 2),
            infer_meshes_s=round(batch / wall, 1),
            infer_cpu_ms=round(cpu * 1e3, 1),
            infer_gflops=round(flops * batch / wall / 1e9, 2),
            infer_peak_pct=round(100 * flops * batch / wall / 1e9 / peak, 1),
        )
        row["peak_rss_mb"] = round(peak_rss_mb(), 0)
        if device.type == "cuda":
            row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 0)
        rows.append(row)
        by_variant[variant] = row
        print(json.dumps(row), flush=True)
        del model
    for conv in backbones:  # the ratio targets, measured with alternating steps
        names = [f"{conv}/{p}" for p in pools]
        if not all(n in by_variant for n in names):
            continue
        (fixed, _), (attention, _), (frozen, _) = (build(conv, p) for p in pools)
        ratio_repeats = 2 if args.quick else 2 * repeats
        by_variant[names[1]]["train_ratio"] = round(
            interleaved_ratio(train_step(fixed, data), train_step(attention, data),
                              repeats=ratio_repeats, warmup=warmup, device=device), 3)  # fmt: skip
        fixed.eval()
        frozen.eval()
        by_variant[names[2]]["infer_ratio"] = round(
            interleaved_ratio(inference(fixed, data), inference(frozen, data),
                              repeats=ratio_repeats, warmup=warmup, device=device), 3)  # fmt: skip
        print(json.dumps({"variant": conv, "attention_train_ratio": by_variant[names[1]][
            "train_ratio"], "frozen_infer_ratio": by_variant[names[2]]["infer_ratio"]}),
            flush=True)  # fmt: skip
        del fixed, attention, frozen
    for variant, conv, pool_name in [] if args.no_naive else variants:
        # the naive reference is a correctness oracle (same parameters, same outputs); the
        # speed yardstick is SpiralNet++'s own code (the peer section)
        model, _ = build(conv, pool_name)
        naive = NaiveReference(model)
        with torch.no_grad():
            diff = (naive(data[:2]) - model(data[:2])).abs().max().item()
        by_variant[variant]["naive_max_diff"] = float(f"{diff:.2g}")
        print(json.dumps({"variant": variant, "naive_max_diff": float(f"{diff:.2g}")}), flush=True)
        del model, naive
    return rows


def section_data(args) -> list[dict]:
    """COMA-layout import and DataLoader throughput from a prepared dataset (meshes/s)."""
    from torch.utils.data import DataLoader

    from deep3dmm.data import RegisteredMeshDataset
    from deep3dmm.data.importers import import_coma
    from deep3dmm.mesh import Template, shapes, write_mesh

    files = 200 if args.quick else args.files
    coma = SHARED / "templates" / "coma_template.obj"
    template = Template.load(coma) if coma.is_file() else Template(*shapes.grid(71, 71))
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="d3dmm-bench-"))
    rows = []

    def add(step: str, count: int, seconds: float) -> None:
        row = dict(section="data", step=step, meshes=count, seconds=round(seconds, 3),
                   meshes_s=round(count / seconds, 0))  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)

    try:
        src = scratch / "coma"
        if not src.is_dir() or len(list(src.rglob("*.ply"))) != files:
            shutil.rmtree(src, ignore_errors=True)
            rng = np.random.default_rng(0)
            started = time.perf_counter()
            for i in range(files):
                subject, expression = f"subject{i // 500:02d}", f"expr{(i // 100) % 5}"
                noisy = template.vertices + rng.normal(0, 1e-3, template.vertices.shape)
                path = src / subject / expression / f"{expression}.{i % 100:06d}.ply"
                write_mesh(path, noisy, template.faces)
            add("write binary PLY (COMA layout)", files, time.perf_counter() - started)
        workers = sorted({1, os.cpu_count() or 1})
        for w in workers:
            shutil.rmtree(scratch / f"prepared_{w}", ignore_errors=True)
            started = time.perf_counter()
            ds = import_coma(src, scratch / f"prepared_{w}", workers=w)
            add(f"import coma, {w} worker(s)", len(ds), time.perf_counter() - started)
        dataset = RegisteredMeshDataset(scratch / f"prepared_{workers[-1]}", "train")
        _ = dataset.normalization  # fitted once (train split), not part of the loading time
        for num_workers in (0, 2):
            loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=num_workers)
            for _ in range(2):  # the second epoch, page cache warm, is the one reported
                started, count = time.perf_counter(), 0
                for batch in loader:
                    count += len(batch)
                seconds = time.perf_counter() - started
            add(f"DataLoader batch 32, {num_workers} workers (train split)", count, seconds)
        started = time.perf_counter()
        full = dataset.tensor()
        add("Dataset.tensor() (train split)", len(full), time.perf_counter() - started)
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return rows


SECTIONS = {
    "peak": section_peak,
    "hierarchy": section_hierarchy,
    "peer": section_peer,
    "model": section_model,
    "scaling": section_scaling,
    "data": section_data,
}


# ---------------------------------------------------------------------------------- report
def markdown_rows(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with ``columns`` = [(key, header)] ('-' when absent)."""

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float) and value >= 1000:
            return f"{value:,.0f}"
        if isinstance(value, int) and value >= 10000:
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(h for _, h in columns) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines)


COLUMNS = {
    "peak": [("what", "measurement"), ("device", "device"), ("threads", "threads"),
             ("gflops", "GFLOP/s")],
    "hierarchy": [("template", "template"), ("levels", "vertices per level"),
                  ("build_s", "build s"), ("cached_load_s", "cached load s"),
                  ("repeats", "repeats")],
    "model": [("variant", "variant"), ("params", "params"), ("mflop_mesh", "MFLOP/mesh (fwd)"),
              ("mflop_executed", "executed MFLOP/mesh"),
              ("train_ms", "train ms/step"), ("train_cpu_ms", "train CPU ms"),
              ("train_meshes_s", "train meshes/s"),
              ("train_gflops", "train GFLOP/s"), ("train_peak_pct", "% peak"),
              ("train_ratio", "train / fixed (alternating)"),
              ("infer_ms", "infer ms/batch"), ("infer_cpu_ms", "infer CPU ms"),
              ("infer_ms_mesh", "infer ms/mesh"),
              ("infer_meshes_s", "infer meshes/s"), ("infer_gflops", "infer GFLOP/s"),
              ("infer_ratio", "infer / fixed (alternating)"),
              ("peak_rss_mb", "peak RSS MiB"), ("peak_cuda_mb", "peak CUDA MiB"),
              ("naive_max_diff", "max abs diff naive")],
    "data": [("step", "step"), ("meshes", "meshes"), ("seconds", "seconds"),
             ("meshes_s", "meshes/s")],
    "peer": [("cpu", "CPU"), ("threads", "threads"), ("batch", "batch"), ("rounds", "rounds"),
             ("load_start", "load start"), ("load_end", "load end"),
             ("peer_train_ms", "SpiralNet++ train ms"), ("ours_train_ms", "ours train ms"),
             ("peer_train_ratio", "train: peer / ours"),
             ("peer_infer_ms", "SpiralNet++ infer ms"), ("ours_infer_ms", "ours infer ms"),
             ("peer_infer_ratio", "infer: peer / ours"),
             ("previous_train_ratio", "train: previous / ours"),
             ("previous_infer_ratio", "infer: previous / ours"),
             ("peer_max_diff", "max abs diff peer")],
    "scaling": [("template", "template"), ("vertices", "vertices"), ("batch", "batch"),
                ("build_s", "hierarchy build s"), ("fixed_ms", "fixed step ms"),
                ("attention_ms", "attention step ms"),
                ("ratio", "attention / fixed (alternating)"),
                ("frozen_ms", "frozen-mappings step ms"),
                ("floor_ratio", "frozen / fixed (the floor)"),
                ("fixed_rss_mb", "peak RSS fixed MiB"),
                ("attention_rss_mb", "peak RSS attention MiB"), ("rss_ratio", "RSS ratio"),
                ("fixed_cuda_mb", "peak CUDA fixed MiB"),
                ("attention_cuda_mb", "peak CUDA attention MiB"),
                ("recall", "approximate top-k recall per level"), ("load", "load")],
}  # fmt: skip


def write_docs(path: Path, rows: list[dict], args, load_start: float, load_end: float) -> None:
    """docs/benchmarks.md: the machine, the load, one table per section."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import machine_description

    from deep3dmm.atomic import atomic_write_text

    cpus = os.cpu_count() or 1
    contended = load_start > 0.5
    load = (
        f"Load average (1 min) at the start of the run: **{load_start:.1f}**, at the end: "
        f"**{load_end:.1f}** on {cpus} logical CPUs (the end figure includes this benchmark's "
        f"own {torch.get_num_threads()} threads). "
    )
    load += (
        "**Contended: other processes were running, so these timings are pessimistic and "
        "noisy; ratios measured in the same run (speed-ups, % of peak) are the more reliable "
        "figures. Re-run `python scripts/benchmark.py` on a quiet machine to replace them.**"
        if contended
        else "The machine was quiet when the run started."
    )
    lines = [
        "# Benchmarks: speed and memory",
        "",
        "Generated by `python scripts/benchmark.py"
        + (f" --device {args.device}" if args.device != "cpu" else "")
        + "` (every number below is measured by that run; never edit by hand).",
        "",
        f"Machine: {machine_description(args.device)}; device `{args.device}`, "
        f"torch threads {torch.get_num_threads()}"
        f"{', deep3dmm.nn.reuse_freed_memory() on' if not args.no_reuse_memory else ''}.",
        "",
        load,
        "",
        f"Timings: median wall clock of {3 if args.quick else args.repeats} repeats after "
        "warm-up"
        + (
            " -- a `--quick` smoke run on a small icosphere, not the COMA figures."
            if args.quick
            else "."
        ),  # fmt: skip
        "",
    ]
    text = {
        "peak": "## Machine peak\n\nOne large float32 matmul (`2 n^3` FLOPs): the yardstick "
        "for the achieved GFLOP/s below.",
        "hierarchy": "## Mesh hierarchy\n\n`benchmarks/hierarchy.py: benchmark_hierarchy(template, "
        "repeats=5)`: quadric decimation (factors 4,4,4,4), D/U, Laplacians and spirals "
        "(L = 9) built from scratch, and a warm `MeshHierarchy.cached` call (hash + `.npz` "
        "read).",
        "model": "## Autoencoder: train step and inference\n\nBatch of random meshes on the "
        "COMA template hierarchy (5023, 1256, 314, 79, 20 vertices); spiral: channels "
        "32,32,32,64, latent 16, L = 9; cheb: channels 16,16,16,32, latent 8, K = 6; attention "
        "top-k 8 down / 32 up, d = 21; *frozen*: attention frozen into a sparse matrix "
        "(inference only). Train step = forward + L1 loss + backward + Adam. MFLOP/mesh is "
        "the analytic forward count of the model's layers as defined (`flops_per_mesh`; a "
        "train step is counted as 3x); *executed* counts what runs: the spiral/fixed "
        "shortcuts (encoder conv at the kept rows without D, U fused into the decoder's "
        "conv) do less work than the layers they stand for. GFLOP/s and % peak are executed "
        "FLOPs per second, over the matmul peak. The last column is the largest "
        "output difference to `NaiveReference`, the same parameters run the way the original "
        "research code runs them (Neural3DMM-style spiral gather, dense D/U with "
        "`torch.matmul`, PyG-style Chebyshev on a per-call batch graph, dense attention as in "
        "the Deep3DMM release): a correctness oracle, not a speed yardstick (it is slower "
        "than the real peer code; see the SpiralNet++ section). *train / fixed "
        "(alternating)*: the attention model's training step over the fixed model's, the two "
        "run alternately (median of the per-round ratios over twice the repeats; steadier than "
        "a ratio of two medians taken minutes apart); *infer / fixed (alternating)*: the same "
        "for the frozen model's inference. Peak RSS is the process maximum so far (it only "
        "grows down the table).",
        "peer": "## Against SpiralNet++'s own code\n\nThe published SpiralNet++ code (Gong et "
        "al., commit 96df4d8, MIT; read from `../shared/peers/spiralnet_plus`, never copied; "
        "`torch_scatter.scatter_add` supplied by the ATen kernel it wraps) builds its `AE` "
        "on deep3dmm's COMA hierarchy (factors 4,4,4,4, L = 9) with the weights of deep3dmm's "
        "spiral/fixed model copied in (last column: the two outputs' largest difference). "
        "Training steps (forward, L1, backward, Adam) and inference of the two, plus "
        "deep3dmm's previous spiral convolution (autograd through `index_select`, its "
        "backward an `index_add_`), alternate round by round in one process with the same "
        "threads and allocator policy; ratios are medians of the per-round ratios (robust to "
        "load drift), times are medians.",
        "scaling": "## Scaling with mesh size\n\nThe COMA template subdivided here (trimesh "
        "midpoint subdivision) to 20k and 80k vertices; spiral backbone (channels 32,32,32,64, "
        "L = 9), factors 4,4,4,4, batch 4. Every configuration runs in its own subprocess, so "
        "peak RSS is that model's alone (it includes the process's hierarchy and torch "
        "baseline); the hierarchy build is timed from scratch in the fixed run; the ratio "
        "comes from a third subprocess alternating the fixed and attention steps with a "
        "third model's, the attention model with its mappings frozen to constants "
        "(`freeze_pooling()`): the same convolutions and sparse products without the head's "
        "search, scoring and value gradients, so *frozen / fixed* is the least any attention "
        "head with these top-k (8 down, 32 up) can cost; step times "
        "are means over whole cycles of the approximate search (16 steps), the ratio that of "
        "the total times. Attention "
        "uses `topk_search=\"auto\"`: the exact dense search on levels up to "
        "`AUTO_EXACT_SCORES` (5e7) scores, the clustered approximate search above (every "
        "level-0 mapping of the 20k and 80k templates, and the 20k template's level 1), "
        "run on every `APPROXIMATE_SEARCH_EVERY`-th (16th) step, the steps between rescoring "
        "each row's 1.5k best columns of the last search; the recall column gives each "
        "approximate level's recall of the exact top-k (fraction of the dense top-k entries "
        "found, on 2,048 sampled rows per level), the mean over one such cycle of training "
        "steps after the timed ones, each step's picks against the exact top-k of the keys "
        "and queries that step used.",
        "data": "## Data loading\n\nBinary PLY files of the COMA template with noise in the "
        "COMA folder layout (scratch folder), imported with `import_coma`, then the train "
        "split of the prepared dataset through a `DataLoader` (batch 32; second epoch, page "
        "cache warm) and `Dataset.tensor()`. Compare with the train meshes/s above: loading "
        "is orders of magnitude faster than a training step.",
    }
    for section in SECTIONS:
        part = [r for r in rows if r["section"] == section]
        if part:
            columns = [c for c in COLUMNS[section] if any(c[0] in r for r in part)]
            lines += [text[section], "", markdown_rows(part, columns), ""]
    model = {r["variant"]: r for r in rows if r["section"] == "model"}
    summary = _peer_summary(rows) + _model_summary(model, cpu=contended)
    if summary:
        lines += ["## Reading", ""] + summary + [""]
    if ATTEMPTS.is_file():
        lines += [ATTEMPTS.read_text()]
    atomic_write_text(path, "\n".join(lines))


def _model_summary(model: dict[str, dict], *, cpu: bool) -> list[str]:
    """Sentences computed from the model rows (attention overhead, speed-ups).

    With ``cpu`` (a contended run) the attention/fixed ratios use process CPU time, which
    other processes disturb less than wall time.
    """
    train, infer = ("train_cpu_ms", "infer_cpu_ms") if cpu else ("train_ms", "infer_ms")
    clock = "CPU time" if cpu else "wall time"
    out = []
    for conv in ("spiral", "cheb"):
        fixed, att = model.get(f"{conv}/fixed"), model.get(f"{conv}/attention")
        frozen = model.get(f"{conv}/attention-frozen")
        if fixed and att and train in fixed and train in att:
            out.append(
                f"- {conv}: attention pooling costs {att[train] / fixed[train]:.2f}x the fixed "
                f"model's training step and {att[infer] / fixed[infer]:.2f}x its inference"
                + (f"; frozen, {frozen[infer] / fixed[infer]:.2f}x" if frozen else "")
                + f" ({clock}, separate medians)."
            )
        if att and frozen and "train_ratio" in att and "infer_ratio" in frozen:
            out.append(
                f"- {conv}, fixed and attention steps alternating (the steadier ratio): "
                f"training {att['train_ratio']:.2f}x (target <= 1.3x: "
                f"{'met' if att['train_ratio'] <= 1.3 else 'not met'}), frozen inference "
                f"{frozen['infer_ratio']:.2f}x (target <= 1.05x: "
                f"{'met' if frozen['infer_ratio'] <= 1.05 else 'not met'})."
                + (
                    " Issue 6's targets, met against the fixed spiral model of its day; since "
                    "issue 21 that model convolves only the rows its D keeps and fuses U into "
                    "the next convolution, which learned mappings (9 and 35 entries per row) "
                    "cannot do (the floor: the scaling table's frozen / fixed)."
                    if conv == "spiral" and att["train_ratio"] > 1.3
                    else ""
                )
            )
    if cpu and out:
        out.append(
            "- Under contention even these ratios move by tens of per cent from run to run "
            "(another job may take the CPU during one measurement and not the next)."
        )
    return out


#: Hand-kept log of the speed attempts (measured during development), appended to the page.
ATTEMPTS = Path(__file__).resolve().parent / "benchmark_attempts.md"


def _met(value: float, target: float, *, at_most: bool = False) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else "not met"


def _peer_summary(rows: list[dict]) -> list[str]:
    """The issue's targets, computed from the peer and scaling rows."""
    out = []
    for r in rows:
        if r["section"] == "peer" and "peer_train_ratio" in r:
            out.append(
                f"- SpiralNet++'s own code over ours ({r['cpu']}, {r['threads']} threads, load "
                f"{r['load_start']}-{r['load_end']}): training {r['peer_train_ratio']:.2f}x "
                f"(target >= 2x: {_met(r['peer_train_ratio'], 2.0)}), inference "
                f"{r['peer_infer_ratio']:.2f}x (target >= 2.5x: "
                f"{_met(r['peer_infer_ratio'], 2.5)}); outputs equal within "
                f"{r['peer_max_diff']:.1g}. Ours over "
                f"deep3dmm's spiral convolution before issue 21 (autograd through index_select): "
                f"{r['previous_train_ratio']:.2f}x training, "
                f"{r['previous_infer_ratio']:.2f}x inference."
            )
        if r["section"] == "scaling" and r["vertices"] > 50000:
            out.append(
                f"- {r['vertices']:,} vertices, batch {r['batch']}: attention step "
                f"{r['ratio']:.2f}x fixed (target <= 1.5x: {_met(r['ratio'], 1.5, at_most=True)}"
                f"), peak RSS {r['rss_ratio']:.2f}x (target <= 1.3x: "
                f"{_met(r['rss_ratio'], 1.3, at_most=True)}), hierarchy build "
                f"{r['build_s']:.1f} s (target < 5 s: {_met(r['build_s'], 5.0, at_most=True)})."
            )
            if "floor_ratio" in r:
                out.append(
                    f"  The same model with its mappings frozen to constants (no search, no "
                    f"scoring, no value gradients: what any attention head with these top-k "
                    f"costs at the least) takes {r['floor_ratio']:.2f}x the fixed step: its "
                    f"convolutions cannot take the fixed model's shortcuts (a selecting D "
                    f"evaluates the conv at the kept quarter of the rows; U's 3 entries per "
                    f"row let the decoder's conv run on the coarse level), so the 1.5x target "
                    f"lies below this floor; the head itself adds "
                    f"{r['ratio'] - r['floor_ratio']:.2f}x."
                )
    return out


# ---------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run (< 1 min)")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu | cuda"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma list of {list(SECTIONS)}"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement")
    parser.add_argument(
        "--variants", default=None, help="model variants, e.g. spiral/fixed,cheb/attention"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive reference")
    parser.add_argument("--files", type=int, default=2000, help="data section: PLY files")
    parser.add_argument("--scratch", default=None, help="data section: scratch folder (kept)")
    parser.add_argument(
        "--no-reuse-memory",
        action="store_true",
        help="do not tune the CPU allocator (deep3dmm.nn.reuse_freed_memory)",
    )
    add_arguments(parser)
    parser.add_argument("--json", default=None, help="also write all rows to this JSON file")
    parser.add_argument(
        "--rows",
        nargs="+",
        default=None,
        help="write the page from saved rows instead of measuring: --json files or logs of "
        "earlier runs (lines holding one JSON row); later files win per section",
    )
    parser.add_argument(
        "--docs",
        default=None,
        help="Markdown report path (default docs/benchmarks.md for a full run of every "
        "section; none for --quick or a subset)",
    )
    return parser.parse_args(argv)


def saved_rows(paths: list[str]) -> tuple[list[dict], list[str]]:
    """Rows of earlier runs: a ``--json`` list, or a log's lines that are one JSON row each.

    A section found in a later file replaces that section's rows of the earlier ones.
    Returns ``(rows, sections in the page's order)``.
    """
    by_section: dict[str, list[dict]] = {}
    for path in paths:
        text = Path(path).read_text()
        try:
            found = json.loads(text)
        except json.JSONDecodeError:
            found = []
            for line in text.splitlines():
                if line.startswith("{"):
                    try:
                        found.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        fresh: dict[str, list[dict]] = {}
        extra: dict[str, dict] = {}  # a log's later lines completing model rows
        for row in found if isinstance(found, list) else []:
            if isinstance(row, dict) and "section" in row:
                fresh.setdefault(row["section"], []).append(row)
            elif isinstance(row, dict) and "attention_train_ratio" in row:
                extra.setdefault(f"{row['variant']}/attention", {})["train_ratio"] = row[
                    "attention_train_ratio"
                ]
                extra.setdefault(f"{row['variant']}/attention-frozen", {})["infer_ratio"] = row[
                    "frozen_infer_ratio"
                ]
            elif isinstance(row, dict) and "naive_max_diff" in row:
                extra.setdefault(row["variant"], {})["naive_max_diff"] = row["naive_max_diff"]
        for row in fresh.get("model", []):
            row.update(extra.get(row.get("variant"), {}))
        by_section.update(fresh)
    names = [name for name in SECTIONS if name in by_section]
    return [r for name in names for r in by_section[name]], names


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.nn import reuse_freed_memory

    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    if args.device == "cpu" and not args.no_reuse_memory:
        reuse_freed_memory()
    names = [s for s in args.sections.split(",") if s]
    sections, columns_of = dict(SECTIONS), dict(COLUMNS)
    if "export" in names:  # optional: not part of the default run
        import benchmark_export

        this = sys.modules[__name__]
        sections["export"] = lambda a: benchmark_export.section_export(a, benchmark=this)
        columns_of["export"] = benchmark_export.COLUMNS
    if "fitting" in names:  # optional (issue 17): time per fit, benchmarks/fitting.py
        from benchmarks import fitting as benchmark_fitting

        sections["fitting"] = benchmark_fitting.section_fitting
        columns_of["fitting"] = benchmark_fitting.COLUMNS
    unknown = [s for s in names if s not in sections]
    if unknown:
        extra = ["export", "fitting"]
        print(f"unknown section(s) {unknown}; choose from {[*SECTIONS, *extra]}", file=sys.stderr)
        return 2
    rows = []
    if args.rows:
        rows, names = saved_rows(args.rows)
        load_start = min((r["load_start"] for r in rows if "load_start" in r), default=load_start)
    for name in [] if args.rows else names:
        rows.extend(sections[name](args))
    for name in names:
        part = [r for r in rows if r["section"] == name]
        columns = [c for c in columns_of[name] if any(c[0] in r for r in part)]
        print(f"\n{name}\n" + markdown_rows(part, columns))
    load_end = os.getloadavg()[0]
    if args.rows:
        load_end = max((r["load_end"] for r in rows if "load_end" in r), default=load_end)
    elapsed = time.perf_counter() - started
    print(f"\nload average {load_start:.1f} -> {load_end:.1f}; {elapsed:.0f} s; "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}")  # fmt: skip
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2))
    docs = args.docs
    if docs is None and not args.quick and set(names) == set(SECTIONS) and not args.rows:
        docs = ROOT / "docs" / "benchmarks.md"
    if docs:
        write_docs(Path(docs), rows, args, load_start, load_end)
        print(f"wrote {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
