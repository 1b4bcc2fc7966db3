"""Data pipeline speed: COMA-layout import (meshes/s) and Dataset/DataLoader load (meshes/s).

Writes N noisy copies of the COMA template (5023 vertices) as binary PLY files in the COMA
layout under a scratch folder (never the project), imports them with 1 and with all
workers, then iterates a RegisteredMeshDataset through a DataLoader (batch 32).

    python scripts/benchmark_data.py --files 2000 --scratch /tmp/d3dmm_bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from deep3dmm.data import RegisteredMeshDataset
from deep3dmm.data.importers import import_coma
from deep3dmm.mesh import Template, write_mesh

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--scratch", default="/tmp/d3dmm_bench")
    parser.add_argument(
        "--template", default=str(ROOT.parent / "shared/data/templates/coma_template.obj")
    )
    args = parser.parse_args()
    scratch = Path(args.scratch)
    src = scratch / "coma"
    template = Template.load(args.template)
    per_sequence = 100
    if not src.is_dir() or len(list(src.rglob("*.ply"))) != args.files:
        shutil.rmtree(src, ignore_errors=True)
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for i in range(args.files):
            subject, expression = f"subject{i // 500:02d}", f"expr{(i // per_sequence) % 5}"
            noisy = template.vertices + rng.normal(0, 1e-3, template.vertices.shape)
            path = src / subject / expression / f"{expression}.{i % per_sequence:06d}.ply"
            write_mesh(path, noisy, template.faces)
        print(f"wrote {args.files} PLY files in {time.perf_counter() - started:.1f} s")
    for workers in (1, os.cpu_count() or 1):
        started = time.perf_counter()
        ds = import_coma(src, scratch / f"prepared_{workers}", workers=workers)
        seconds = time.perf_counter() - started
        print(
            f"import coma, {workers} workers: {len(ds)} meshes in {seconds:.1f} s "
            f"= {len(ds) / seconds:.0f} meshes/s"
        )
    dataset = RegisteredMeshDataset(scratch / f"prepared_{workers}", "train")
    _ = dataset.normalization  # fit once (train split), not part of the loading time
    for num_workers in (0, 2):
        loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=num_workers)
        for _ in range(2):  # second epoch: page cache warm
            started, count = time.perf_counter(), 0
            for batch in loader:
                count += len(batch)
            seconds = time.perf_counter() - started
        print(
            f"DataLoader batch 32, {num_workers} workers: {count} meshes in {seconds:.2f} s "
            f"= {count / seconds:.0f} meshes/s"
        )
    started = time.perf_counter()
    full = dataset.tensor()
    seconds = time.perf_counter() - started
    print(
        f"Dataset.tensor(): {len(full)} meshes in {seconds:.2f} s = {len(full) / seconds:.0f} "
        "meshes/s"
    )


if __name__ == "__main__":
    main()
