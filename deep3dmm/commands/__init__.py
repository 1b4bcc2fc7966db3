"""Subcommands of the ``deep3dmm`` CLI, one module per area; each exposes ``register``."""

from __future__ import annotations

import argparse

__all__ = [
    "COMMANDS",
    "DESCRIPTIONS",
    "SPLITS",
    "add_command",
    "add_checkpoint_option",
    "add_progress_option",
    "add_split_option",
    "add_view_option",
    "group",
]

SPLITS = ("train", "val", "test")

#: Every top-level command: name -> (modules of ``deep3dmm.commands`` that register it, the
#: line ``deep3dmm --help`` shows). The CLI imports only the modules of the command given,
#: so ``--help``, ``--version`` and argument errors need none of them.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "mesh": (("mesh",), "inspect mesh files"),
    "hierarchy": (
        ("hierarchy",),
        "build a template's mesh hierarchy (decimation, D/U, Laplacians, spirals)",
    ),
    "data": (("data", "data_make"), "import, generate and inspect prepared datasets"),
    "train": (("train",), "train a model (no arguments: the embedded default in a few minutes)"),
    "evaluate": (("train",), "per-vertex error in mm of a trained run"),
    "runs": (("runs",), "inspect and compare trained runs"),
    "render": (
        ("analysis",),
        "input | reconstruction | error heat map rows, and the mean error map",
    ),
    "interpolate": (("analysis",), "decode a linear path between two meshes' latent codes"),
    "transfer": (("analysis",), "deformation transfer by latent arithmetic z(C) + z(B) - z(A)"),
    "receptive": (
        ("analysis",),
        "receptive fields of the mapping matrices (fixed D/U vs learned P)",
    ),
    "plot": (("analysis",), "training curves of several runs on one chart"),
    "sample": (("sample",), "draw new meshes from a run (VAE prior or fitted Gaussian)"),
    "sample-quality": (
        ("sample",),
        "sample quality vs a split: MMD (mm), coverage, 1-NN accuracy",
    ),
    "register": (
        ("register",),
        "register raw scans (any topology, mesh or point cloud) to a template",
    ),
    "fit": (("fit",), "fit a trained model (latent code + similarity) to a new observation"),
    "export": (
        ("export",),
        "export a run as ONNX or TorchScript (frozen, standard ops, dynamic batch)",
    ),
    "view": (
        ("viewer",),
        "interactive latent-space viewer in the browser (sliders, interpolation, errors)",
    ),
    "image": (("image",), "image-graph models on 2D data (demos: examples/image_graph/)"),
}


def add_command(
    subparsers: argparse._SubParsersAction, name: str, **kwargs
) -> argparse.ArgumentParser:
    """Add the top-level command ``name`` with its :data:`COMMANDS` help line."""
    kwargs.setdefault("description", DESCRIPTIONS.get(name, COMMANDS[name][1]))
    return subparsers.add_parser(name, help=COMMANDS[name][1], **kwargs)


def group(
    subparsers: argparse._SubParsersAction, name: str, help: str | None = None
) -> argparse._SubParsersAction:
    """Get (or create) the command group ``name`` and return its subparsers.

    Several modules may add commands to one group (``data import`` and ``data make``); the
    group's help line is its :data:`COMMANDS` entry.
    """
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = add_command(subparsers, name)
        parser.set_defaults(group_parser=parser)
        parser._group_subparsers = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    return parser._group_subparsers


def add_split_option(parser: argparse.ArgumentParser) -> None:
    """``--split {train,val,test}`` (default test)."""
    parser.add_argument("--split", default="test", choices=SPLITS)


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint {best,last}`` (default best): which checkpoint of a run to load."""
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"))


def add_view_option(
    parser: argparse.ArgumentParser, *, help: str = "camera (front, side, top, -y)"
) -> None:
    """``--view`` (default front): the camera of a rendered picture (one spelling everywhere)."""
    parser.add_argument("--view", default="front", help=help)


def add_progress_option(
    parser: argparse.ArgumentParser, *, help: str = "hide progress bars"
) -> None:
    """``--quiet``: hide tqdm bars (``args.no_progress``; the one spelling of every command)."""
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=help)


#: The long description of each command (``deep3dmm COMMAND --help``; the help line
#: of :data:`COMMANDS` where a command has none).
DESCRIPTIONS: dict[str, str] = {
    "hierarchy": (
        "Decimate TEMPLATE level by level (OpenMesh quadric edge collapse), compute the "
        "down/up matrices, adjacency, Laplacians and spirals of every level, save them to one"
        " .npz file and print a per-level table."
    ),
    "train": (
        "Train a mesh autoencoder into a run folder, then evaluate it on the test split. "
        "Without arguments: the default anny faces dataset and a spiral + attention model for"
        " a few minutes. Options override --config, which overrides the defaults."
    ),
    "evaluate": (
        "Mean, median and std of the per-vertex Euclidean error in millimetres, per sequence;"
        " writes RUN/eval/<split>.json and RUN/eval/<split>_per_vertex.npy."
    ),
    "render": (
        "Render chosen meshes of a split with their reconstructions and per-vertex error heat"
        " maps (fixed colour scale in mm), and the split's mean per-vertex error painted on "
        "the template."
    ),
    "interpolate": (
        "Linear interpolation of latent codes between two meshes (mesh files registered to "
        "the run's template, or dataset row indices); writes every step as PLY, a strip image"
        " and an animated GIF."
    ),
    "transfer": (
        "Transfer the deformation A -> B onto C in latent space; compares with the naive "
        "vertex-space transfer C + (B - A) and, when the dataset holds it, with the ground "
        "truth (C's subject in B's sequence and frame)."
    ),
    "receptive": (
        "For chosen output vertices of one pooling step, paint the weights of the input "
        "vertices that feed them (the matrix rows) on the input level's mesh."
    ),
    "plot": ("Losses and validation error (mm) per epoch of several runs, from their metrics.csv."),
    "register": (
        "Similarity alignment (landmarks, or principal axes + ICP), then non-rigid ICP "
        "(Amberg et al. 2007, trimesh), or with --prior a PCA model of registered meshes "
        "fitted to the scan (no sliding along the surface). A scan file gives OUT (template "
        "topology), OUT.json "
        "(distances in mm both ways) and OUT.png (residual heat map); a folder of scans gives"
        " a prepared dataset that `deep3dmm train --data` reads."
    ),
    "fit": (
        "Optimise the latent code and a similarity transform through the frozen decoder "
        "(Adam, then L-BFGS) with a Gaussian prior fitted to the training codes. TARGET: a "
        "mesh with the template's topology (per-vertex loss), any other mesh or point cloud "
        "(two-sided robust nearest-point distance; --partial: scan -> model only), or a "
        "dataset row; landmarks alone or added. Writes OUT/fit.ply, fit_model_frame.ply, "
        "z.npy, fit.json, fit.png, loss.png. With --data/--split instead of TARGET: fit every"
        " mesh of a split and tabulate encoder vs fitted error (mm)."
    ),
    "export": (
        "Freeze the attention pooling and write the model as ONNX (opset 17, standard ops "
        "only) or TorchScript, with template.ply, the normalisation (mean.npy, std.npy) and "
        "model.json, so a mesh can be decoded with onnxruntime alone. --part autoencoder "
        "(default) writes the encoder, the decoder and the whole model."
    ),
    "view": (
        "Serve a local web page showing the decoded mesh in 3D with one slider per latent "
        "dimension (or principal direction), interpolation between dataset meshes, "
        "reconstruction error heat maps and PLY download. Binds to 127.0.0.1 unless --host is"
        " given. Needs three.js once: `deep3dmm view --setup` (npm ci); then works offline."
    ),
    "sample": (
        "Draw new meshes from a run: from the prior N(0, I) of a --variational run, from a "
        "Gaussian fitted to the training codes of a plain autoencoder or pca run. Writes "
        "sample_NNN.ply (template topology, the dataset's unit), samples.png and "
        "samples.json; with --traverse DIM also a strip along one latent direction."
    ),
    "sample-quality": (
        "Sample quality against a split: minimum matching distance (mm), coverage and 1-NN "
        "accuracy (50 % is ideal) of as many samples as the split holds; prints them and "
        "writes RUN/eval/sample_quality_<split>.json (or --out)."
    ),
}
