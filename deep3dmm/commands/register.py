"""``deep3dmm register``: raw scans onto the template's topology (one file or a folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deep3dmm.commands import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``register``."""
    reg = add_command(subparsers, "register")
    reg.add_argument("scan", help="a scan file (.ply .obj .off .npy .xyz .txt .csv) or a folder")
    reg.add_argument(
        "--template",
        required=True,
        help="template mesh file, or a prepared dataset folder (its template)",
    )
    reg.add_argument(
        "--out",
        required=True,
        help="output mesh (scan file) or prepared dataset folder (scan folder)",
    )
    reg.add_argument(
        "--landmarks",
        metavar="FILE_OR_DIR",
        help="scan landmarks: x y z rows (a folder of <stem>.txt in folder mode)",
    )
    reg.add_argument(
        "--template-landmarks",
        metavar="FILE",
        help="template landmarks: vertex ids, or 'face w0 w1 w2' rows",
    )
    reg.add_argument(
        "--template-unit",
        choices=("m", "cm", "mm"),
        help="unit of a template mesh file (default: guessed from its size)",
    )
    reg.add_argument(
        "--scan-unit",
        choices=("m", "cm", "mm"),
        help="unit of the scans (default: detected by size against the template)",
    )
    reg.add_argument(
        "--frame",
        choices=("template", "scan"),
        default="template",
        help="output frame: template (rigid motion undone, default) or scan",
    )
    reg.add_argument(
        "--prior",
        metavar="RUN_OR_DATASET",
        help="fit a PCA model of these registered meshes (a run's train split, or a prepared "
        "dataset) instead of non-rigid ICP: no sliding along the surface",
    )
    reg.add_argument(
        "--prior-components", type=int, default=64, help="principal components of --prior"
    )
    reg.add_argument(
        "--no-deform",
        action="store_true",
        help="with --prior: keep the model fit (no final smooth deformation onto the scan)",
    )
    reg.add_argument("--skip-bad", action="store_true", help="folder mode: skip failing scans")
    reg.add_argument("--workers", type=int, default=None, help="folder mode: processes")
    reg.add_argument("--no-figure", action="store_true", help="scan mode: no heat map")
    reg.set_defaults(func=run_register)


def run_register(args: argparse.Namespace) -> int:
    """Register one scan or a folder."""
    from deep3dmm.registration import (
        RegistrationOptions,
        load_template,
        register_file,
        register_folder,
    )

    template = load_template(args.template, unit=args.template_unit)
    options = RegistrationOptions(
        template_landmarks=args.template_landmarks,
        scan_unit=args.scan_unit,
        frame=args.frame,
        prior=args.prior,
        prior_components=args.prior_components,
        deform=not args.no_deform,
    )
    if Path(args.scan).is_dir():
        dataset = register_folder(
            args.scan,
            template,
            args.out,
            landmarks_dir=args.landmarks,
            options=options,
            skip_bad=args.skip_bad,
            workers=args.workers,
        )
        rows = dataset.meta.get("registration", [])
        if rows:
            means = [r["scan_to_result"]["mean_mm"] for r in rows]
            print(
                f"scan -> registered: mean {sum(means) / len(means):.3f} mm over {len(rows)} scans"
            )
        print(
            f"wrote {dataset.path}: {len(dataset)} meshes x {template.num_vertices} vertices "
            f"(unit {dataset.unit}); skipped {len(dataset.meta['skipped'])}"
        )
        return 0
    report = register_file(
        args.scan,
        template,
        args.out,
        landmarks=args.landmarks,
        options=options,
        figure=not args.no_figure,
    )
    for note in report["notes"]:
        print(f"note: {note}")
    for key, label in (
        ("scan_to_result", "scan -> registered"),
        ("result_to_scan", "registered -> scan"),
    ):
        d = report[key]
        print(
            f"{label:20s} mean {d['mean_mm']:.3f} mm, median {d['median_mm']:.3f} mm, "
            f"p95 {d['p95_mm']:.3f} mm"
        )
    d = report["scan_to_result"]
    print(
        f"scan points within 1/2/5 mm: {d['within_1mm']:.1%} / {d['within_2mm']:.1%} / "
        f"{d['within_5mm']:.1%}; {report['iterations']} iterations, {report['seconds']:.1f} s"
    )
    print(
        f"wrote {report['mesh']}, {Path(report['mesh']).with_suffix('.json')}"
        + (f", {report['figure']}" if "figure" in report else "")
    )
    return 0
