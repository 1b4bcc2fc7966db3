"""The optional ``export`` section of scripts/benchmark.py: onnxruntime vs PyTorch inference.

    python scripts/benchmark.py --sections export        # COMA template (skipped when absent)
    python scripts/benchmark.py --sections export --quick

For spiral/cheb x fixed/attention models on the COMA template hierarchy (random weights,
attention frozen as for inference), the PyTorch model (``model(x)``, no grad) and its ONNX
export (``autoencoder.onnx`` in onnxruntime, CPU, the same thread count) reconstruct a batch
of 1 and of 32 meshes (inputs N(0, 1), as normalised meshes). Times are medians; the ratio is
measured with the two run alternately. On a busy machine use ``--threads 1``: with more threads
than free cores, PyTorch's OpenMP barriers slow it by orders of magnitude, which says nothing
about either runtime.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

COLUMNS = [("variant", "variant"), ("batch", "batch"), ("torch_ms", "PyTorch ms"),
           ("ort_ms", "onnxruntime ms"), ("ratio", "ort / torch (alternating)"),
           ("max_diff", "max abs diff"), ("max_out", "max abs output"),
           ("load", "load avg")]  # fmt: skip


def section_export(args, *, benchmark) -> list[dict]:
    """onnxruntime vs PyTorch inference at batch 1 and 32 (``benchmark``: the main module)."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("# export: onnxruntime is not installed (pip install 'deep3dmm[export]'); skipped")
        return []
    from deep3dmm.export import export_model
    from deep3dmm.nn import MeshAutoencoder

    shared = [benchmark.SHARED, Path(os.environ.get("DEEP3DMM_SHARED", "/work/shared")) / "data"]
    coma = next((p for p in shared if (p / "templates/coma_template.obj").is_file()), None)
    if args.quick:
        hierarchy, name = benchmark.benchmark_hierarchy(True)
    elif coma is None:
        print(f"# export: no templates/coma_template.obj under {shared}; skipped")
        return []
    else:
        from deep3dmm.mesh import Template
        from deep3dmm.mesh.hierarchy import MeshHierarchy

        template = Template.load(coma / "templates/coma_template.obj")
        hierarchy = MeshHierarchy.cached(
            template, factors=(4, 4, 4, 4), spiral_length=9, spiral_dilation=1, seed=0
        )
        name = "COMA template"
    device = torch.device("cpu")
    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    backbones = {
        "spiral": dict(conv="spiral", channels=(32, 32, 32, 64), latent=16),
        "cheb": dict(conv="cheb", channels=(16, 16, 16, 32), latent=8, K=6),
    }
    v = hierarchy.num_vertices[0]
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    print(f"# export: {name} {hierarchy.num_vertices}, threads {torch.get_num_threads()}")
    rows = []
    for conv, spec in backbones.items():
        for pool in ("fixed", "attention"):
            torch.manual_seed(0)
            model = MeshAutoencoder.build(hierarchy, pool=pool, **spec).eval()
            model.freeze_pooling()
            with tempfile.TemporaryDirectory() as tmp:
                export_model(
                    model, hierarchy, tmp, part="autoencoder", check=False,
                    mean=np.zeros((v, 3)), std=np.ones((v, 3)),
                    faces=hierarchy.faces[0], template=hierarchy.vertices[0],
                )  # fmt: skip
                session = ort.InferenceSession(
                    os.path.join(tmp, "autoencoder.onnx"),
                    options,
                    providers=["CPUExecutionProvider"],
                )
            for batch in (1, 32):
                x = torch.randn(batch, v, 3)
                feed = {"vertices": x.numpy()}

                def run_torch(x=x, model=model):
                    with torch.no_grad():
                        return model(x)

                def run_ort(feed=feed, session=session):
                    return session.run(None, feed)[0]

                reference = run_torch().numpy()
                diff = float(np.abs(run_ort() - reference).max())
                torch_s, _ = benchmark.timed(
                    run_torch, repeats=repeats, warmup=warmup, device=device
                )
                ort_s, _ = benchmark.timed(run_ort, repeats=repeats, warmup=warmup, device=device)
                ratio = benchmark.interleaved_ratio(
                    run_torch, run_ort, repeats=repeats, warmup=1, device=device
                )
                row = dict(section="export", variant=f"{conv}/{pool}", batch=batch,
                           torch_ms=round(torch_s * 1e3, 2), ort_ms=round(ort_s * 1e3, 2),
                           ratio=round(ratio, 2), max_diff=float(f"{diff:.2e}"),
                           max_out=round(float(np.abs(reference).max()), 2),
                           load=round(os.getloadavg()[0], 1))  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows
