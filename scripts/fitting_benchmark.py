#!/usr/bin/env python
"""Registration and fitting accuracy on honest synthetic scans of held-out meshes.

For each run (a trained model and its dataset), held-out test meshes with known ground
truth are turned into scans (:func:`deep3dmm.registration.synthetic_scan`): remeshed
(subdivide + quadric decimation to 0.8x the vertex count), Gaussian noise sigma 0.5 mm,
a random rigid motion (any rotation, translation up to 5 cm), and for partial scans a
plane cut removing 40 % of the points. Measured, in mm against the ground truth:

- registration (template -> scan, similarity + NICP), with 68 landmarks and without:
  per-vertex error mean / median / 95th percentile, and seconds per scan;
- fitting: the registered held-out mesh (vs the encoder's reconstruction of it), the
  remeshed noisy moved scan, the partial scan, 68 landmarks alone (noisy, moved); the
  ratios scan / registered and partial / registered;
- time per fit for the 5023-vertex COMA template (an untrained default model on
  ../shared/data/templates/coma_template.obj: time does not depend on the weights).

Usage::

    python scripts/fitting_benchmark.py --run RUN [--run RUN2 ...] --json out.json \\
        [--figures docs/images] [--count 3] [--coma-time]

The machine load average is printed beside the timings (shared machines are slow).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = next(
    (p for p in (ROOT.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    ROOT.parent / "shared" / "data",
)
log = logging.getLogger("fitting_benchmark")


def farthest_points(vertices: np.ndarray, count: int) -> np.ndarray:
    """``count`` vertex ids spread over the mesh (farthest-point sampling, vectorised)."""
    chosen = [int(np.argmax(vertices[:, 1]))]
    distance = np.linalg.norm(vertices - vertices[chosen[0]], axis=1)
    for _ in range(count - 1):  # a loop over landmarks, not over vertices
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(vertices - vertices[chosen[-1]], axis=1))
    return np.array(chosen)


def stats(errors_mm: np.ndarray) -> dict:
    e = np.asarray(errors_mm, np.float64).reshape(-1)
    return {
        "mean_mm": float(e.mean()),
        "median_mm": float(np.median(e)),
        "p95_mm": float(np.percentile(e, 95)),
    }


def benchmark_run(
    run_dir: Path, *, count: int, seed: int, figures: Path | None, register: bool
) -> dict:
    from deep3dmm.fitting import FitModel, FitOptions, fit
    from deep3dmm.fitting.api import registered_reconstruction_mm
    from deep3dmm.fitting.outputs import fit_figure
    from deep3dmm.registration import TemplateLandmarks, register_scan, synthetic_scan
    from deep3dmm.registration.report import residual_figure, scan_report
    from deep3dmm.train import load_run

    run = load_run(run_dir)
    dataset = run.open_dataset()
    fm = FitModel.from_run(run, dataset)
    to_mm = fm.to_mm
    faces = dataset.template.faces
    test = run.split["test"]
    rows = test[np.linspace(0, len(test) - 1, count).astype(int)]
    truth = np.asarray(dataset.vertices[rows], np.float64)  # (N, V, 3)
    ids = farthest_points(dataset.template.vertices, 68)
    landmarks = TemplateLandmarks(vertex_ids=ids)
    rng = np.random.default_rng(seed)
    noise = 0.5 / to_mm
    out: dict = {
        "run": str(run_dir),
        "dataset": str(dataset.path),
        "unit": dataset.unit,
        "vertices": int(dataset.template.num_vertices),
        "rows": rows.tolist(),
        "epoch": int(run.checkpoint.get("epoch", 0)),
    }
    options = FitOptions()
    # fitting: registered (batched), then scan / partial / landmarks per mesh
    started = time.perf_counter()
    registered = fit(fm, registered=truth.astype(np.float32), options=options)
    fit_reg = np.linalg.norm(registered.vertices - truth, axis=-1).mean(axis=1) * to_mm
    encoder = registered_reconstruction_mm(fm, truth.astype(np.float32))
    out["fit_registered_mm"] = fit_reg.tolist()
    out["encoder_mm"] = encoder.tolist()
    out["fit_registered_seconds"] = time.perf_counter() - started
    results = {"scan": [], "partial": [], "landmarks": [], "seconds_scan": []}
    registration = {"landmarks": [], "no_landmarks": [], "seconds": []}
    for k in range(len(rows)):
        scan = synthetic_scan(truth[k], faces, rng=rng, noise=noise, translate=50 / to_mm)
        start = time.perf_counter()
        r = fit(fm, scan=scan.scan, options=options)
        results["seconds_scan"].append(time.perf_counter() - start)
        results["scan"].append(
            float(np.linalg.norm(r.vertices[0] - scan.truth, axis=1).mean() * to_mm)
        )
        part = synthetic_scan(
            truth[k],
            faces,
            rng=rng,
            noise=noise,
            translate=50 / to_mm,
            missing=0.4,
            crop_direction=(1.0, 0.0, 0.0),
        )
        p = fit(fm, scan=part.scan, partial=True, options=options)
        results["partial"].append(
            float(np.linalg.norm(p.vertices[0] - part.truth, axis=1).mean() * to_mm)
        )
        points = scan.truth[ids] + rng.normal(0, noise, (len(ids), 3))
        lm = fit(fm, landmarks=points, model_landmarks=landmarks, options=options)
        results["landmarks"].append(
            float(np.linalg.norm(lm.vertices[0] - scan.truth, axis=1).mean() * to_mm)
        )
        log.info(
            "%s row %d: registered %.3f (encoder %.3f), scan %.3f, partial %.3f, landmarks %.3f mm",
            run_dir.name,
            rows[k],
            fit_reg[k],
            encoder[k],
            results["scan"][-1],
            results["partial"][-1],
            results["landmarks"][-1],
        )
        if figures is not None and k == 0:
            error = np.linalg.norm(p.vertices[0] - part.truth, axis=1) * to_mm
            back = part.motion.inverse()
            fit_figure(
                (part.scan.points, part.scan.faces),
                p.vertices[0],
                faces,
                error,
                figures / f"fit_partial_{run_dir.name}.png",
                back=back,
            )
        if register:
            variants = [("landmarks", True)] + ([("no_landmarks", False)] if k == 0 else [])
            for key, with_landmarks in variants:  # without landmarks: the first mesh only
                start = time.perf_counter()
                reg = register_scan(
                    dataset.template.vertices,
                    faces,
                    scan.scan,
                    template_landmarks=landmarks if with_landmarks else None,
                    scan_landmarks=points if with_landmarks else None,
                )
                registration["seconds"].append(time.perf_counter() - start)
                error = np.linalg.norm(reg.vertices - scan.truth, axis=1) * to_mm
                registration[key].append(error)
                log.info(
                    "%s row %d: registration (%s) %.3f mm mean, %.1f s",
                    run_dir.name,
                    rows[k],
                    key,
                    error.mean(),
                    registration["seconds"][-1],
                )
                if figures is not None and k == 0 and with_landmarks:
                    report, residual = scan_report(reg.vertices, faces, scan.scan, to_mm=to_mm)
                    back = reg.similarity.rigid_inverse()
                    residual_figure(
                        back.apply(reg.vertices),
                        faces,
                        residual,
                        figures / f"registration_{run_dir.name}.png",
                        scan=scan.scan.transformed(back.matrix),
                    )
    reg_mean = float(np.mean(fit_reg))
    out["fit"] = {
        "registered_mm": reg_mean,
        "encoder_mm": float(np.mean(encoder)),
        "fit_le_encoder": bool(np.all(fit_reg <= encoder + 1e-4)),
        "scan_mm": float(np.mean(results["scan"])),
        "partial_mm": float(np.mean(results["partial"])),
        "landmarks_mm": float(np.mean(results["landmarks"])),
        "scan_ratio": float(np.mean(results["scan"]) / reg_mean),
        "partial_ratio": float(np.mean(results["partial"]) / reg_mean),
        "seconds_per_scan_fit": float(np.median(results["seconds_scan"])),
        "per_mesh": results,
    }
    if register:
        out["registration"] = {
            key: stats(np.concatenate(registration[key])) for key in ("landmarks", "no_landmarks")
        }
        out["registration"]["seconds_per_scan"] = float(np.median(registration["seconds"]))
    return out


def benchmark_registration(
    dataset_dir: Path,
    *,
    protocol: str,
    count: int,
    seed: int,
    nicp: bool,
    figures: Path | None,
    prior_data: Path | None = None,
    prior_components: int = 64,
) -> dict:
    """Registration of synthetic scans of held-out meshes: NICP vs the shape-prior methods.

    The prior is the PCA of the split's train rows (test rows never enter it), or with
    ``prior_data`` of another prepared dataset on the same template (what ``register
    --prior DATASET`` reads: its interpolation train split), e.g. many other subjects;
    its projection error on the ground truth (the best the model alone can do) is
    reported beside the results.
    """
    from deep3dmm.data import PreparedDataset
    from deep3dmm.data.splits import make_split
    from deep3dmm.registration import TemplateLandmarks, register_scan, synthetic_scan
    from deep3dmm.registration.report import residual_figure, scan_report
    from deep3dmm.registration.shape_prior import ShapePrior

    dataset = PreparedDataset(dataset_dir)
    split = make_split(dataset, protocol)
    to_mm = float(dataset.to_millimetres)
    faces = dataset.template.faces
    started = time.perf_counter()
    if prior_data is None:
        prior = ShapePrior.from_dataset(dataset, rows=split.train, components=prior_components)
    else:
        other = PreparedDataset(prior_data)
        if other.meta["template_hash"] != dataset.meta["template_hash"]:
            raise SystemExit(f"{prior_data} has another template than {dataset_dir}")
        prior = ShapePrior.from_dataset(other, components=prior_components)
    prior_seconds = time.perf_counter() - started
    rows = split.test[np.linspace(0, len(split.test) - 1, count).astype(int)]
    ids = farthest_points(dataset.template.vertices, 68)
    landmarks = TemplateLandmarks(vertex_ids=ids)
    rng = np.random.default_rng(seed)
    noise = 0.5 / to_mm
    methods = {"prior+deform": {"deform": True}, "prior": {"deform": False}}
    if nicp:
        methods["nicp"] = {}
    errors = {m: [] for m in [*methods, "prior_projection"]}
    seconds = {m: [] for m in methods}
    flat = prior.basis.reshape(prior.components, -1)
    for k, row in enumerate(rows):
        truth = np.asarray(dataset.vertices[row], np.float64)
        u = np.linalg.lstsq(flat.T, (truth - prior.mean).reshape(-1), rcond=None)[0]
        errors["prior_projection"].append(np.linalg.norm(prior.shape(u) - truth, axis=1) * to_mm)
        scan = synthetic_scan(truth, faces, rng=rng, noise=noise, translate=50 / to_mm)
        points = scan.truth[ids] + rng.normal(0, noise, (len(ids), 3))
        for name, kwargs in methods.items():
            start = time.perf_counter()
            reg = register_scan(
                dataset.template.vertices,
                faces,
                scan.scan,
                template_landmarks=landmarks,
                scan_landmarks=points,
                shape_prior=prior if name != "nicp" else None,
                **kwargs,
            )
            seconds[name].append(time.perf_counter() - start)
            error = np.linalg.norm(reg.vertices - scan.truth, axis=1) * to_mm
            errors[name].append(error)
            log.info(
                "%s (%s) row %d: %s %.3f mm mean, %.1f s",
                dataset_dir.name,
                protocol,
                row,
                name,
                error.mean(),
                seconds[name][-1],
            )
            if figures is not None and k == 0 and name == "prior+deform":
                _, residual = scan_report(reg.vertices, faces, scan.scan, to_mm=to_mm)
                back = reg.similarity.rigid_inverse()
                residual_figure(
                    back.apply(reg.vertices),
                    faces,
                    residual,
                    figures / f"registration_{dataset_dir.name}_{protocol}.png",
                    scan=scan.scan.transformed(back.matrix),
                )
    return {
        "dataset": str(dataset_dir),
        "protocol": protocol,
        "rows": rows.tolist(),
        "vertices": int(dataset.template.num_vertices),
        "train_rows": int(len(split.train)),
        "prior_data": str(prior_data) if prior_data else "train split",
        "prior_components": prior.components,
        "prior_seconds": prior_seconds,
        **{name: stats(np.concatenate(e)) for name, e in errors.items()},
        "seconds_per_scan": {name: float(np.median(v)) for name, v in seconds.items()},
        "load_average": os.getloadavg(),
    }


def coma_fit_time(repeats: int = 3) -> list[dict]:
    """Time per fit on the COMA template (benchmarks/fitting.py, one torch thread)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.fitting import time_fits

    return time_fits(repeats, threads=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", default=[], help="run folder (repeatable)")
    parser.add_argument("--count", type=int, default=3, help="held-out meshes per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, help="folder for the pictures")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--no-register", action="store_true", help="skip registration")
    parser.add_argument(
        "--register-data",
        action="append",
        default=[],
        type=Path,
        help="registration only, on this prepared dataset (repeatable): NICP vs shape prior",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        default=[],
        help="split protocol(s) for --register-data (default: interpolation)",
    )
    parser.add_argument("--no-nicp", action="store_true", help="--register-data: skip NICP")
    parser.add_argument(
        "--prior-data",
        type=Path,
        help="--register-data: build the shape prior from this other prepared dataset (same "
        "template; e.g. other subjects) instead of the split's train rows",
    )
    parser.add_argument("--prior-components", type=int, default=64, help="shape prior size")
    parser.add_argument("--coma-time", action="store_true", help="time fits on the COMA template")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    results = {"load_average_start": os.getloadavg(), "cpus": os.cpu_count(), "runs": []}
    for run in args.run:
        results["runs"].append(
            benchmark_run(
                Path(run),
                count=args.count,
                seed=args.seed,
                figures=args.figures,
                register=not args.no_register,
            )
        )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=float))
    results["registration"] = []
    for data in args.register_data:
        for protocol in args.protocol or ["interpolation"]:
            results["registration"].append(
                benchmark_registration(
                    data,
                    protocol=protocol,
                    count=args.count,
                    seed=args.seed,
                    nicp=not args.no_nicp,
                    figures=args.figures,
                    prior_data=args.prior_data,
                    prior_components=args.prior_components,
                )
            )
            if args.json:  # after each part: a long run keeps what it measured
                args.json.write_text(json.dumps(results, indent=2, default=float))
    if args.coma_time:
        results["coma_time"] = coma_fit_time()
    results["load_average_end"] = os.getloadavg()
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2, default=float))
    for run in results["runs"]:
        print(
            json.dumps(
                {k: v for k, v in run.items() if k not in ("rows",)},
                indent=2,
                default=lambda x: x.tolist() if hasattr(x, "tolist") else float(x),
            )
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                results,
                indent=2,
                default=lambda x: x.tolist() if hasattr(x, "tolist") else float(x),
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
