"""Time per fit on the 5023-vertex COMA template: registered mesh, scan, partial scan, landmarks.

The default ``deep3dmm-spiral`` model (untrained: the time does not depend on the weights)
on ``../shared/data/templates/coma_template.obj`` (factors 4,4,4,4), default
:class:`~deep3dmm.fitting.FitOptions`. One warm-up fit, then the four kinds of target
alternate round by round (so load drift hits them alike); per kind the median wall
seconds, process CPU seconds (every thread of this process; steadier than wall time on a
shared machine) and optimiser evaluations. Run alone with
``python benchmarks/fitting.py [--repeats 3] [--threads 1]`` or as the optional section
``python scripts/benchmark.py --sections fitting``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("registered", "scan", "partial", "landmarks")
COLUMNS = [
    ("target", "target (COMA template, 5023 vertices)"),
    ("wall_s", "wall s"),
    ("cpu_s", "process CPU s"),
    ("evaluations", "objective evaluations"),
    ("threads", "torch threads"),
    ("load", "load average (1 min)"),
]


def _shared_templates() -> Path:
    """``<repo>/../shared/data/templates``, else ``/work/shared/data/templates``."""
    for base in (ROOT.parent / "shared", Path(os.environ.get("DEEP3DMM_SHARED", "/work/shared"))):
        if (base / "data" / "templates").is_dir():
            return base / "data" / "templates"
    return ROOT.parent / "shared" / "data" / "templates"


def coma_problem(path: Path | None = None):
    """``(FitModel, vertices, faces)`` of an untrained default model on the COMA template."""
    import numpy as np
    import torch

    from deep3dmm.fitting import FitModel, LatentPrior
    from deep3dmm.mesh import MeshHierarchy, read_mesh
    from deep3dmm.nn import build_preset

    vertices, faces = read_mesh(path or _shared_templates() / "coma_template.obj")
    hierarchy = MeshHierarchy.cached((vertices, faces), factors=(4, 4, 4, 4))
    model = build_preset("deep3dmm-spiral", hierarchy).eval()
    latent = model.from_latent.in_features
    fm = FitModel(
        model=model.freeze_pooling().requires_grad_(False),
        mean=torch.as_tensor(vertices),
        std=torch.full_like(torch.as_tensor(vertices), 0.01),
        faces=faces,
        to_mm=1000.0,
        prior=LatentPrior(np.zeros(latent), np.eye(latent), 1),
    )
    return fm, vertices, faces


def time_fits(repeats: int = 3, *, threads: int = 1, options=None) -> list[dict]:
    """Median wall / CPU seconds of one fit per kind of target (rows for the benchmark table)."""
    import numpy as np
    import torch

    from deep3dmm.fitting import FitOptions, fit
    from deep3dmm.registration import TemplateLandmarks, synthetic_scan

    torch.set_num_threads(threads)
    options = options or FitOptions()
    fm, vertices, faces = coma_problem()
    rng = np.random.default_rng(0)
    scan = synthetic_scan(vertices, faces, rng=rng, noise=5e-4, translate=0.05)
    part = synthetic_scan(vertices, faces, rng=rng, noise=5e-4, translate=0.05, missing=0.4)
    ids = np.linspace(0, len(vertices) - 1, 68).astype(int)
    targets = {
        "registered": {"registered": vertices[None].astype(np.float32)},
        "scan": {"scan": scan.scan},
        "partial": {"scan": part.scan, "partial": True},
        "landmarks": {
            "landmarks": scan.truth[ids],
            "model_landmarks": TemplateLandmarks(vertex_ids=ids),
        },
    }
    fit(fm, options=options, **targets["scan"])  # warm-up: lazy imports, allocator
    seconds = {k: {"wall": [], "cpu": [], "evaluations": []} for k in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            wall, cpu = time.perf_counter(), time.process_time()
            result = fit(fm, options=options, **targets[kind])
            seconds[kind]["wall"].append(time.perf_counter() - wall)
            seconds[kind]["cpu"].append(time.process_time() - cpu)
            seconds[kind]["evaluations"].append(len(result.curve))
    load = round(os.getloadavg()[0], 1)
    return [
        {
            "section": "fitting",
            "target": kind,
            "wall_s": round(statistics.median(seconds[kind]["wall"]), 2),
            "cpu_s": round(statistics.median(seconds[kind]["cpu"]), 2),
            "evaluations": int(statistics.median(seconds[kind]["evaluations"])),
            "threads": threads,
            "load": load,
        }
        for kind in KINDS
    ]


def section_fitting(args) -> list[dict]:
    """``scripts/benchmark.py --sections fitting``: :func:`time_fits` with its options."""
    rows = time_fits(1 if args.quick else 3, threads=args.threads)
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    """Print the rows as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for row in time_fits(args.repeats, threads=args.threads):
        print(json.dumps(row))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
