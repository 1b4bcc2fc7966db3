#!/usr/bin/env python
"""Speed and memory benchmarks of deep3dmm, one function per section.

Sections:
    model   train step (forward + L1 loss + backward + Adam) and inference of the mesh
            autoencoder, spiral/cheb x fixed/attention/attention-frozen, on the COMA template
            hierarchy (5023 vertices, factors 4,4,4,4, spiral length 9), batch 32.

Usage:
    python scripts/benchmark.py                       # all sections
    python scripts/benchmark.py --sections model --quick
    python scripts/benchmark.py --device cuda --json results.json

Timings are medians over repeats (after warm-up) with ``torch.set_num_threads(--threads)``;
on a shared machine they are contended: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
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


def benchmark_hierarchy(quick: bool):
    """The COMA template hierarchy (or, with --quick / without shared data, an icosphere)."""
    from deep3dmm.mesh import Template, shapes
    from deep3dmm.mesh.hierarchy import MeshHierarchy

    coma = SHARED / "templates" / "coma_template.obj"
    if not quick and coma.is_file():
        template, name = Template.load(coma), "COMA template"
    else:
        template, name = Template(*shapes.icosphere(4 if quick else 5)), "icosphere"
    hierarchy = MeshHierarchy.cached(
        template, factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1, seed=0
    )
    return hierarchy, name


def train_step(model, data):
    """One training step closure: forward, L1 loss, backward, Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = (model(data) - data).abs().mean()
        loss.backward()
        optimizer.step()

    return step


def inference(model, data):
    """One inference closure (``torch.inference_mode``)."""

    def run():
        with torch.inference_mode():
            model(data)

    return run


# ---------------------------------------------------------------------------------- sections
def section_model(args) -> list[dict]:
    """Autoencoder train/inference speed: spiral/cheb x fixed/attention/attention-frozen."""
    from deep3dmm.nn import MeshAutoencoder

    device = torch.device(args.device)
    hierarchy, name = benchmark_hierarchy(args.quick)
    batch = args.batch or (8 if args.quick else 32)
    repeats, warmup = (2, 1) if args.quick else (args.repeats, 2)
    backbones = {
        "spiral": dict(conv="spiral", channels=(32, 32, 32, 64), latent=16),
        "cheb": dict(conv="cheb", channels=(16, 16, 16, 32), latent=8, K=6),
    }
    pools = {"fixed": "fixed", "attention": "attention", "attention-frozen": "attention"}
    selected = args.variants.split(",") if args.variants else None
    torch.manual_seed(0)
    data = torch.randn(batch, hierarchy.num_vertices[0], 3, device=device) * 0.1
    rows = []
    print(
        f"# model: {name} {hierarchy.num_vertices}, batch {batch}, device {device}, "
        f"threads {torch.get_num_threads()}, repeats {repeats} (median), "
        f"reuse_freed_memory {not args.no_reuse_memory}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for conv, kwargs in backbones.items():
        for pool_name, pool in pools.items():
            variant = f"{conv}/{pool_name}"
            if selected and variant not in selected:
                continue
            torch.manual_seed(0)
            model = MeshAutoencoder.build(hierarchy, pool=pool, **kwargs).to(device)
            params = sum(p.numel() for p in model.parameters())
            row = dict(section="model", variant=variant, vertices=hierarchy.num_vertices[0],
                       batch=batch, params=params)  # fmt: skip
            if pool_name == "attention-frozen":
                model.freeze_pooling()
                row["params"] = sum(p.numel() for p in model.parameters())
            else:
                step = train_step(model, data)
                wall, cpu = timed(step, repeats=repeats, warmup=warmup, device=device)
                row.update(
                    train_ms=round(wall * 1e3, 1),
                    train_meshes_s=round(batch / wall, 1),
                    train_cpu_ms=round(cpu * 1e3, 1),
                )
            model.eval()
            wall, cpu = timed(inference(model, data), repeats=repeats, warmup=warmup, device=device)
            row.update(
                infer_ms=round(wall * 1e3, 1),
                infer_meshes_s=round(batch / wall, 1),
                infer_cpu_ms=round(cpu * 1e3, 1),
            )
            row["peak_rss_mb"] = round(peak_rss_mb(), 0)
            if device.type == "cuda":
                row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 0)
            rows.append(row)
            print(json.dumps(row), flush=True)
            del model
    return rows


SECTIONS = {"model": section_model}


# ---------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
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
    parser.add_argument(
        "--no-reuse-memory",
        action="store_true",
        help="do not tune the CPU allocator (deep3dmm.nn.reuse_freed_memory)",
    )
    parser.add_argument("--json", default=None, help="also write all rows to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sys.path.insert(0, str(ROOT))
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.nn import reuse_freed_memory

    torch.set_num_threads(args.threads)
    if args.device == "cpu" and not args.no_reuse_memory:
        reuse_freed_memory()
    names = [s for s in args.sections.split(",") if s]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        rows.extend(SECTIONS[name](args))
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
