"""``deep3dmm export``: a trained run as ONNX / TorchScript with its template and normalisation."""

from __future__ import annotations

import argparse

from deep3dmm.commands import add_checkpoint_option, add_command

FORMATS = ("onnx", "torchscript")  # deep3dmm.export.FORMATS (not imported: it pulls in torch)
PARTS = ("encoder", "decoder", "autoencoder")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    export = add_command(subparsers, "export")
    export.add_argument("run", help="run folder written by `deep3dmm train`")
    export.add_argument("--format", default="onnx", help=f"one of {', '.join(FORMATS)}")
    export.add_argument("--part", default="autoencoder", help=f"one of {', '.join(PARTS)}")
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_checkpoint_option(export)
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export a run and print the parity measured against the live model."""
    from deep3dmm.export import export_run

    result = export_run(args.run, args.out, format=args.format, part=args.part,
                        checkpoint=args.checkpoint)  # fmt: skip
    for path in result.files:
        print(f"wrote {path}")
    if result.parity is None:
        print("parity not measured (pip install 'deep3dmm[export]' for onnxruntime)")
    else:
        for part, by_batch in result.parity.items():
            text = ", ".join(f"batch {b}: {d:.2e}" for b, d in by_batch.items())
            print(f"  {part:<12} max |exported - PyTorch| (normalised units)  {text}")
    print(f"wrote {args.out}/model.json, template.ply, mean.npy, std.npy")
    return 0
