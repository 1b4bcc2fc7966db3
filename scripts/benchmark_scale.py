#!/usr/bin/env python
"""Benchmark sections against the real peer and across mesh sizes (used by benchmark.py).

- ``peer``: SpiralNet++'s own published code (``../shared/peers/spiralnet_plus``, imported
  from there by :mod:`peer_spiralnet`) beside deep3dmm's spiral/fixed model on the same
  hierarchy (COMA template, factors 4,4,4,4, L = 9) with the same weights: outputs compared,
  then training steps and inference alternating in one process (ratio = median of per-round
  ratios), same allocator policy and threads. The previous deep3dmm spiral convolution
  (autograd through ``index_select``) runs in the same rounds, so the effect of the
  gathering backward is measured too.
- ``scaling``: fixed vs attention pooling on templates made here by midpoint subdivision of
  the COMA template (5,023 / 20,018 / 79,936 vertices), batch 4; every configuration runs
  in its own subprocess (``python scripts/benchmark_scale.py worker ...``) so its peak RSS is
  its own; a further subprocess per size alternates the two models' steps for the ratio,
  and a third model's: the attention model with its mappings frozen to constants
  (``freeze_pooling``), which pays for no head (no search, scoring or value gradients) but
  runs the same convolutions and sparse products: the floor of any attention head with
  these top-k.

Run alone: ``python scripts/benchmark_scale.py peer`` or ``... scaling [--sizes 0,1,2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
COMA = "templates/coma_template.obj"


def shared_data() -> Path:
    """``$DEEP3DMM_SHARED/data``, ``<repo>/../shared/data`` or ``/work/shared/data``."""
    bases = [Path(os.environ["DEEP3DMM_SHARED"])] if "DEEP3DMM_SHARED" in os.environ else []
    for base in [*bases, ROOT.parent / "shared", Path("/work/shared")]:
        if (base / "data" / COMA).is_file():
            return base / "data"
    return ROOT.parent / "shared" / "data"


def peak_rss_mb() -> float:
    """This process's peak resident set, MiB: ``VmHWM`` of /proc/self/status (reset by exec,
    unlike ``ru_maxrss``, which a subprocess inherits from its parent on Linux)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_average() -> float:
    return os.getloadavg()[0]


def alternating(
    fns, *, repeats: int, warmup: int, device, mean: bool = False
) -> tuple[list[float], list[float]]:
    """Run ``fns`` round-robin; per function the median seconds and the median over rounds of
    ``time(fn) / time(fns[0])`` (a load drift lands on every function of a round). With
    ``mean``: mean seconds and the ratio of total times (for steps whose cost cycles)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - start)
    if mean:
        return [statistics.mean(t) for t in times], [sum(t) / sum(times[0]) for t in times]
    medians = [statistics.median(t) for t in times]
    ratios = [statistics.median(a / b for a, b in zip(t, times[0], strict=True)) for t in times]
    return medians, ratios


def train_step(model, data):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        (model(data) - data).abs().mean().backward()
        optimizer.step()

    step.optimizer = optimizer
    return step


def inference(model, data):
    def run():
        with torch.inference_mode():
            model(data)

    return run


def previous_spiral_forward(conv, x, rows=None):
    """deep3dmm's SpiralConv before the gathering backward: autograd through index_select
    (the whole level convolved, then ``rows`` selected, as the pooling D did)."""
    if rows is not None:
        return previous_spiral_forward(conv, x).index_select(1, rows)
    b, v, c = x.shape
    if not conv.matmul_first:
        gathered = x.index_select(1, conv.spirals.view(-1))
        return conv.linear(gathered.view(b, v, -1))
    o, length = conv.out_channels, conv.spiral_length
    weight = conv.linear.weight.view(o, length, c).permute(2, 1, 0).reshape(c, length * o)
    z = (x.reshape(b * v, c) @ weight).view(b, v * length, o)
    rows = conv.spirals * length + torch.arange(length, device=x.device)
    y = z.index_select(1, rows.view(-1)).view(b, v, length, o).sum(2)
    return y if conv.linear.bias is None else y + conv.linear.bias


def with_previous_spiral(model):
    """``model`` with every SpiralConv's forward replaced by :func:`previous_spiral_forward`."""
    from deep3dmm.nn import SpiralConv

    for module in model.modules():
        if isinstance(module, SpiralConv):
            module.forward = previous_spiral_forward.__get__(module)
            module.upsampled = lambda x, pool, conv=module: previous_spiral_forward(conv, pool(x))
    return model


# ---------------------------------------------------------------------------------- peer
def section_peer(args) -> list[dict]:
    """SpiralNet++'s own code vs deep3dmm spiral/fixed (and deep3dmm's previous conv)."""
    sys.path.insert(0, str(SCRIPTS))
    from machine import cpu_model
    from peer_spiralnet import load_peer, peer_autoencoder

    from deep3dmm.mesh import Template
    from deep3dmm.mesh.hierarchy import MeshHierarchy
    from deep3dmm.nn import MeshAutoencoder

    coma = shared_data() / COMA
    if load_peer() is None or not coma.is_file():
        print("# peer: skipped (../shared/peers/spiralnet_plus or the COMA template absent)")
        return [dict(section="peer", what="skipped: ../shared/peers/spiralnet_plus absent")]
    device = torch.device(args.device)
    hierarchy = MeshHierarchy.cached(
        Template.load(coma), factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1, seed=0
    )
    batch = args.batch or (8 if args.quick else 32)
    repeats = 3 if args.quick else max(args.repeats, 9)
    torch.manual_seed(0)
    data = torch.randn(batch, hierarchy.num_vertices[0], 3, device=device) * 0.1
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MeshAutoencoder.build(
            hierarchy, conv="spiral", pool="fixed", channels=(32, 32, 32, 64), latent=16
        )
        models.append(model.to(device))
    ours, previous = models[0], with_previous_spiral(models[1])
    peer = peer_autoencoder(hierarchy, ours, device)
    with torch.no_grad():
        diff = float((peer(data[:2]) - ours(data[:2])).abs().max())
        diff_previous = float((previous(data[:2]) - ours(data[:2])).abs().max())
    load_start = load_average()
    train, train_ratio = alternating(
        [train_step(ours, data), train_step(peer, data), train_step(previous, data)],
        repeats=repeats, warmup=2, device=device,
    )  # fmt: skip
    infer, infer_ratio = alternating(
        [inference(ours, data), inference(peer, data), inference(previous, data)],
        repeats=repeats, warmup=2, device=device,
    )  # fmt: skip
    row = dict(
        section="peer", cpu=cpu_model() if device.type == "cpu" else torch.cuda.get_device_name(),
        device=str(device), threads=torch.get_num_threads(), batch=batch, rounds=repeats,
        load_start=round(load_start, 1), load_end=round(load_average(), 1),
        ours_train_ms=round(train[0] * 1e3, 1), peer_train_ms=round(train[1] * 1e3, 1),
        previous_train_ms=round(train[2] * 1e3, 1),
        peer_train_ratio=round(train_ratio[1], 3), previous_train_ratio=round(train_ratio[2], 3),
        ours_infer_ms=round(infer[0] * 1e3, 1), peer_infer_ms=round(infer[1] * 1e3, 1),
        previous_infer_ms=round(infer[2] * 1e3, 1),
        peer_infer_ratio=round(infer_ratio[1], 3), previous_infer_ratio=round(infer_ratio[2], 3),
        peer_max_diff=float(f"{diff:.2g}"), previous_max_diff=float(f"{diff_previous:.2g}"),
    )  # fmt: skip
    print(json.dumps(row), flush=True)
    return [row]


# ---------------------------------------------------------------------------------- scaling
SIZES = {0: "COMA template", 1: "COMA subdivided once", 2: "COMA subdivided twice"}


def subdivided(level: int):
    """The COMA template after ``level`` midpoint subdivisions (trimesh), as a Template."""
    import trimesh

    from deep3dmm.mesh import Template

    template = Template.load(shared_data() / COMA)
    vertices, faces = np.asarray(template.vertices), np.asarray(template.faces)
    for _ in range(level):
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    return Template(vertices, faces)


def worker(args) -> dict:
    """One configuration in this process: hierarchy build, then steps (or alternating pair)."""
    from deep3dmm.mesh.hierarchy import MeshHierarchy
    from deep3dmm.nn import MeshAutoencoder, reuse_freed_memory

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu":
        reuse_freed_memory()
    template = subdivided(args.subdivisions)
    params = dict(factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1, seed=0)
    start = time.perf_counter()
    if args.build:
        hierarchy = MeshHierarchy.build(template, **params)
    else:
        hierarchy = MeshHierarchy.cached(template, **params)
    build_s = time.perf_counter() - start
    rss_base = peak_rss_mb()
    torch.manual_seed(0)
    data = torch.randn(args.batch, hierarchy.num_vertices[0], 3, device=device) * 0.1
    pools = args.pool.split(",")
    steps = []
    for pool in pools:
        torch.manual_seed(0)
        model = MeshAutoencoder.build(hierarchy, conv="spiral",
                                      pool="fixed" if pool == "fixed" else "attention",
                                      channels=(32, 32, 32, 64), latent=16,
                                      topk_search="auto").to(device)  # fmt: skip
        if pool == "frozen":  # the attention mappings as constants: no head left to pay for
            model.freeze_pooling()
        steps.append(train_step(model, data))
    # whole cycles of the approximate search (one clustered search, then rescoring steps),
    # timed by their mean: a median of a cycling cost would hide the searching step
    from deep3dmm.nn.config import APPROXIMATE_SEARCH_EVERY as cycle

    load_start = load_average()
    repeats = -(-max(args.repeats, cycle) // cycle) * cycle
    times, ratios = alternating(steps, repeats=repeats, warmup=1, device=device, mean=True)
    row = dict(vertices=hierarchy.num_vertices[0], pools=pools, batch=args.batch,
               build_s=round(build_s, 2), step_ms=[round(t * 1e3, 1) for t in times],
               ratios=[round(r, 3) for r in ratios], load_start=round(load_start, 1),
               load_end=round(load_average(), 1),
               peak_rss_mb=round(peak_rss_mb()),
               rss_before_model_mb=round(rss_base))  # fmt: skip
    if device.type == "cuda":
        row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    if args.recall:
        row["recall"] = approximate_recall(model, data, steps[-1].optimizer)
    return row


def approximate_recall(model, data, optimizer) -> dict:
    """Each approximate level's recall of the exact top-k, mean over one search cycle.

    ``APPROXIMATE_SEARCH_EVERY`` further training steps (one clustered search, the others
    rescoring its candidates); in each, the picks the forward used are compared with the
    exact top-k of the keys and queries it used (before the update), on 2,048 rows drawn
    once per level (the dense rows of a whole 80k level take seconds per step).
    """
    from deep3dmm.nn import AttentionPool
    from deep3dmm.nn.attention_pool import _unit_columns
    from deep3dmm.nn.clustered_topk import ClusteredTopK
    from deep3dmm.nn.config import APPROXIMATE_SEARCH_EVERY

    pools = [p for p in model.modules() if isinstance(p, AttentionPool) and p.approximate]
    recalls = {f"{p.in_vertices}->{p.out_vertices}": [] for p in pools}
    g = torch.Generator().manual_seed(0)
    sample = [torch.randperm(p.out_vertices, generator=g)[:2048] for p in pools]
    for _ in range(APPROXIMATE_SEARCH_EVERY if pools else 0):
        optimizer.zero_grad(set_to_none=True)
        (model(data) - data).abs().mean().backward()
        for pool, rows in zip(pools, sample, strict=True):
            q, k = _unit_columns(pool.queries).detach(), _unit_columns(pool.keys).detach()
            found = pool._clustered.previous[rows]  # the picks of this forward
            recalls[f"{pool.in_vertices}->{pool.out_vertices}"].append(
                ClusteredTopK.recall(found, q[:, rows], k)
            )
        optimizer.step()
    return {name: round(statistics.mean(v), 3) for name, v in recalls.items()}


def run_worker(subdivisions: int, pool: str, args, *, build=False, recall=False) -> dict:
    command = [
        sys.executable, str(Path(__file__).resolve()), "worker",
        "--subdivisions", str(subdivisions), "--pool", pool, "--batch", str(args.scale_batch),
        "--threads", str(args.threads), "--device", args.device,
        "--repeats", str(args.scale_repeats),
    ] + (["--build"] if build else []) + (["--recall"] if recall else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scaling worker failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_scaling(args) -> list[dict]:
    """Step time and peak RSS, fixed vs attention, across template sizes (subprocesses)."""
    if not (shared_data() / COMA).is_file():
        print("# scaling: skipped (the COMA template is absent)")
        return []
    sizes = [int(s) for s in str(args.sizes).split(",")] if args.sizes else [0, 1, 2]
    if args.quick:
        sizes = [0]
    rows = []
    for level in sizes:
        fixed = run_worker(level, "fixed", args, build=True)  # also times the hierarchy build
        attention = run_worker(level, "attention", args, recall=True)
        pair = run_worker(level, "fixed,attention,frozen", args)
        row = dict(
            section="scaling", template=SIZES[level], vertices=fixed["vertices"],
            batch=args.scale_batch, build_s=fixed["build_s"],
            fixed_ms=fixed["step_ms"][0], attention_ms=attention["step_ms"][0],
            ratio=pair["ratios"][1], frozen_ms=pair["step_ms"][2],
            floor_ratio=pair["ratios"][2], fixed_rss_mb=fixed["peak_rss_mb"],
            attention_rss_mb=attention["peak_rss_mb"],
            rss_ratio=round(attention["peak_rss_mb"] / fixed["peak_rss_mb"], 2),
            load=f"{fixed['load_start']}-{pair['load_end']}",
            recall=", ".join(f"{k} {v}" for k, v in attention.get("recall", {}).items()) or "-",
        )  # fmt: skip
        if "peak_cuda_mb" in fixed:
            row.update(fixed_cuda_mb=fixed["peak_cuda_mb"],
                       attention_cuda_mb=attention["peak_cuda_mb"])  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of these sections (shared with benchmark.py)."""
    parser.add_argument("--sizes", default=None, help="scaling: subdivision levels, e.g. 0,1,2")
    parser.add_argument("--scale-batch", type=int, default=4, help="scaling: batch size")
    parser.add_argument("--scale-repeats", type=int, default=3, help="scaling: timed rounds")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["peer", "scaling", "worker"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--subdivisions", type=int, default=0)
    parser.add_argument("--pool", default="fixed")
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--recall", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.what == "worker":
        print(json.dumps(worker(args)), flush=True)
        return 0
    from deep3dmm.nn import reuse_freed_memory

    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        reuse_freed_memory()
    section = section_peer if args.what == "peer" else section_scaling
    section(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
