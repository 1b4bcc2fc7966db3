"""``deep3dmm fit``: fit a trained model to a mesh, a scan, a partial scan or landmarks."""

from __future__ import annotations

import argparse

from deep3dmm.commands import add_checkpoint_option, add_command, add_progress_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit``."""
    fit = add_command(subparsers, "fit")
    add = fit.add_argument
    add("run", help="run folder written by `deep3dmm train`")
    add("target", nargs="?", help="mesh / point cloud file, or a dataset row number")
    add("--out", required=True, metavar="DIR", help="output folder")
    add("--landmarks", metavar="FILE", help="target landmarks: x y z rows (target's unit)")
    add(
        "--model-landmarks",
        metavar="FILE",
        help="the same landmarks on the template: vertex ids or 'face w0 w1 w2' rows",
    )
    add("--partial", action="store_true", help="the scan covers part of the surface")
    add("--as-scan", action="store_true", help="treat a registered mesh as a raw scan")
    add("--scan-unit", choices=("m", "cm", "mm"), help="target unit (default: detected)")
    add("--split", choices=("train", "val", "test"), help="batch mode: fit a whole split")
    add("--data", metavar="DIR", help="batch mode: dataset (default: the run's own)")
    add("--limit", type=int, help="batch mode: fit only the first N meshes of the split")
    add("--batch-size", type=int, default=32, help="batch mode: meshes per vectorised fit")
    add("--prior-weight", type=float, default=0.01, help="weight of the latent prior")
    add("--landmark-weight", type=float, default=1.0, help="landmarks added to a surface")
    add(
        "--kernel",
        choices=("trimmed", "geman-mcclure"),
        default="trimmed",
        help="robust kernel of scan distances",
    )
    add("--adam-steps", type=int, default=120)
    add("--lbfgs-rounds", type=int, default=3)
    add("--fit-scale", action="store_true", help="also fit a global scale")
    add_checkpoint_option(fit)
    add("--no-figure", action="store_true", help="skip the picture")
    add_progress_option(fit)
    fit.set_defaults(func=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    """Fit one target or a split."""
    from deep3dmm.errors import ConfigError
    from deep3dmm.fitting import FitOptions, fit_file, fit_split
    from deep3dmm.train import load_run

    options = FitOptions(
        prior_weight=args.prior_weight,
        landmark_weight=args.landmark_weight,
        kernel=args.kernel,
        adam_steps=args.adam_steps,
        lbfgs_rounds=args.lbfgs_rounds,
        fit_scale=args.fit_scale,
    )
    options.check()
    batch = args.split is not None or args.data is not None
    if batch and args.target is not None:
        raise ConfigError("give TARGET or --split/--data (batch mode), not both")
    if not batch and args.target is None and args.landmarks is None:
        raise ConfigError("nothing to fit", fix="give TARGET, --landmarks, or --split test")
    run = load_run(args.run, checkpoint=args.checkpoint)
    if batch:
        summary = fit_split(
            run,
            args.out,
            split=args.split or "test",
            data=args.data,
            batch_size=args.batch_size,
            limit=args.limit,
            options=options,
            progress=not args.no_progress,
        )
        print(
            f"{summary['split']} split, {summary['meshes']} meshes: encoder "
            f"{summary['encoder_mm']:.3f} mm, fitted {summary['fitted_mm']:.3f} mm mean "
            f"per-vertex error; fit <= encoder on {summary['better']:.0%}; "
            f"{summary['seconds_per_mesh']:.2f} s per mesh"
        )
        print(f"wrote {args.out}/{summary['table']} and fit_{summary['split']}.json")
        return 0
    report = fit_file(
        run,
        args.target,
        args.out,
        landmarks=args.landmarks,
        model_landmarks=args.model_landmarks,
        partial=args.partial,
        as_scan=args.as_scan,
        scan_unit=args.scan_unit,
        options=options,
        figure=not args.no_figure,
        progress=not args.no_progress,
    )
    for note in report["notes"]:
        print(f"note: {note}")
    print(
        f"fitted {report.get('target', 'landmarks')} as a {report['kind']} target in "
        f"{report['seconds']:.1f} s: data term {report['data_mm']:.3f} mm"
    )
    if "encoder_mm" in report:
        print(
            f"  per-vertex error {report['per_vertex_mm']['mean']:.3f} mm "
            f"(encoder {report['encoder_mm']:.3f} mm)"
        )
    if "distances" in report:
        for key in ("scan_to_result", "result_to_scan"):
            d = report["distances"][key]
            print(
                f"  {key.replace('_', ' ')}: mean {d['mean_mm']:.3f} mm, median "
                f"{d['median_mm']:.3f} mm, p95 {d['p95_mm']:.3f} mm"
            )
    if "landmarks_mm" in report:
        print(f"  landmarks: mean {report['landmarks_mm']:.3f} mm")
    if "warning" in report:
        print(f"warning: {report['warning']}")
    print(
        f"wrote {args.out}/fit.ply, fit.json, z.npy"
        + (", fit.png" if "figure" in report["files"] else "")
        + ", loss.png"
    )
    return 0
