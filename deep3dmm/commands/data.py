"""``deep3dmm data import SOURCE SRC --out DIR`` and ``deep3dmm data info DIR``."""

from __future__ import annotations

import argparse

from deep3dmm.commands import group
from deep3dmm.data import PreparedDataset
from deep3dmm.data.importers import IMPORTERS, import_dataset, importer_options
from deep3dmm.data.info import dataset_info
from deep3dmm.errors import ConfigError

# `data import` flags that are not the importer option of the same name (which importers
# take an option is the library's answer: deep3dmm.data.importers.importer_options).
FLAG_OPTIONS = {"ict_sequences": ("sequences", ("ict",)), "sequences": ("sequences", ("dfaust",))}
IMPORT_FLAGS = (
    "template", "unit", "subjects", "expressions", "sequences", "stride", "subject_level",
    "sequence_level", "identities", "ict_sequences", "frames", "active", "identity_scale",
    "keep_vertices", "seed",
)  # fmt: skip


def _level(text: str) -> int | str:
    return "none" if text.lower() == "none" else int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data import`` and ``data info`` to the ``data`` group."""
    data = group(subparsers, "data", "import, generate and inspect prepared datasets")
    imp = data.add_parser(
        "import",
        help="turn a dataset in its published layout into a prepared dataset",
        description="Import a registered-mesh dataset (see docs/data.md for each layout).",
    )
    imp.add_argument("source", choices=sorted(IMPORTERS), help="the source layout")
    imp.add_argument("src", help="the source folder or file")
    imp.add_argument("--out", required=True, help="prepared dataset folder to write")
    imp.add_argument("--skip-bad", action="store_true", help="skip bad files, list them in meta")
    imp.add_argument("--workers", type=int, default=None, help="reader processes (default: cores)")
    imp.add_argument("--template", help="template mesh file [coma, folder, npy]")
    imp.add_argument("--unit", choices=["m", "cm", "mm"], help="length unit [folder, npy]")
    imp.add_argument("--subjects", nargs="+", help="only these subjects [coma, dfaust]")
    imp.add_argument("--expressions", nargs="+", help="only these expressions [coma]")
    imp.add_argument("--sequences", nargs="+", help="only these sequences [dfaust]")
    imp.add_argument("--stride", type=int, help="keep every n-th frame [dfaust hdf5]")
    imp.add_argument("--subject-level", type=_level, help="folder level of the subject [folder]")
    imp.add_argument("--sequence-level", type=_level, help="folder level of the sequence [folder]")
    imp.add_argument("--identities", type=int, help="subjects to sample [ict]")
    imp.add_argument("--ict-sequences", type=int, help="expression sequences [ict]")
    imp.add_argument("--frames", type=int, help="frames per sequence [ict]")
    imp.add_argument("--active", type=int, help="blendshapes active per sequence [ict]")
    imp.add_argument("--identity-scale", type=float, help="std of identity weights [ict]")
    imp.add_argument("--keep-vertices", type=int, help="keep the first n vertices [ict]")
    imp.add_argument("--seed", type=int, help="random seed [ict]")
    imp.set_defaults(func=run_import)
    info = data.add_parser("info", help="counts, subjects, sequences, unit, bbox, split sizes")
    info.add_argument("dir", help="a prepared dataset folder")
    info.add_argument("--holdout", help="also show the extrapolation split for this sequence")
    info.set_defaults(func=run_info)


def run_import(args: argparse.Namespace) -> int:
    """Run one importer with the options that apply to it."""
    options = {}
    for name in IMPORT_FLAGS:
        value = getattr(args, name)
        if value is None:
            continue
        option, only = FLAG_OPTIONS.get(name, (name, tuple(IMPORTERS)))
        sources = [s for s in only if option in importer_options(s)]
        if args.source not in sources:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{flag} does not apply to source {args.source!r}",
                fix=f"it applies to {', '.join(sources)}",
            )
        if value == "none":  # --subject-level none: do not take the subject from folders
            value = None
        options[option] = value
    dataset = import_dataset(
        args.source, args.src, args.out, skip_bad=args.skip_bad, workers=args.workers, **options
    )
    meta = dataset.meta
    print(
        f"wrote {dataset.path}: {len(dataset)} meshes x {dataset.template.num_vertices} "
        f"vertices ({len(meta['subjects'])} subjects, {len(meta['sequences'])} sequences, "
        f"unit {dataset.unit}); skipped {len(meta['skipped'])}"
    )
    for item in meta["skipped"][:10]:
        print(f"  skipped {item['source']}: {item['reason']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print :func:`deep3dmm.data.info.dataset_info`."""
    dataset = PreparedDataset(args.dir)
    print(dataset.path)
    for line in dataset_info(dataset, holdout=args.holdout).lines():
        print(f"  {line}")
    return 0
