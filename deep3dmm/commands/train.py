"""``deep3dmm train`` and ``deep3dmm evaluate``.

``deep3dmm train`` with no arguments trains the embedded default (the anny faces
dataset, a spiral + attention autoencoder, a schedule of a few minutes on 2 CPU
cores), evaluates it and prints where everything is. Under
``torchrun --nproc_per_node=N -m deep3dmm train ...`` it trains with
DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from deep3dmm import schema
from deep3dmm.commands import add_checkpoint_option, add_command, add_split_option
from deep3dmm.errors import ConfigError
from deep3dmm.train.config import SECTION_TYPES, SECTIONS, RunConfig
from deep3dmm.train.resolve import QUICK_TRAIN, new_run_dir, resolve_config

__all__ = ["QUICK_TRAIN", "build_config", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate``."""
    train = add_command(subparsers, "train")
    add = train.add_argument
    add("--config", metavar="FILE", help="TOML run configuration (see docs/training.md)")
    add("--out", metavar="RUN", help="run folder (default: runs/<date>-<time>)")
    add("--resume", action="store_true", help="continue the run in --out from its last.pt")
    add(
        "--resume-from",
        metavar="CHECKPOINT",
        help="with --resume: continue from this full checkpoint instead of last.pt "
        "(e.g. RUN/checkpoints/last.prev.pt)",
    )
    add(
        "--hierarchy",
        metavar="FILE.npz",
        help="train on a hierarchy written by `deep3dmm hierarchy` (instead of its options)",
    )
    add(
        "--preset",
        help="model preset the model options start from (coma, neural3dmm, "
        "spiralnet++, deep3dmm-spectral, deep3dmm-spiral, pca; default deep3dmm-spiral)",
    )
    add("--no-eval", action="store_true", help="skip the test evaluation after training")
    add("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    # Every option of every section, from its schema; hierarchy last: its --seed (of random
    # reference vertices) becomes --hierarchy-seed beside the run's --seed.
    for section in ("data", "model", "optim", "train", "hierarchy"):
        group = train.add_argument_group(f"[{section}] options (override --config)")
        schema.add_arguments(group, SECTION_TYPES[section], section)  # type: ignore[arg-type]
    train.set_defaults(func=run_train)

    evaluate = add_command(subparsers, "evaluate")
    evaluate.add_argument("run", help="run folder written by `deep3dmm train`")
    add_split_option(evaluate)
    evaluate.add_argument("--data", metavar="DIR", help="dataset (default: the run's own)")
    add_checkpoint_option(evaluate)
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=run_evaluate)


def _overrides(args: argparse.Namespace) -> dict[str, dict]:
    """The options given on the command line, by config section."""
    sections: dict[str, dict] = {}
    for section in SECTIONS:
        values = schema.values_from_args(args, SECTION_TYPES[section], section)
        if values:
            sections[section] = values
    if args.preset:
        sections["model"] = {"preset": args.preset, **sections.get("model", {})}
    if "path" in sections.get("data", {}):
        sections["data"]["path"] = str(Path(sections["data"]["path"]).resolve())
    return sections


def build_config(args: argparse.Namespace, run_dir: Path | None) -> RunConfig:
    """The configuration of this invocation (:func:`deep3dmm.train.resolve.resolve_config`)."""
    given = _overrides(args)
    names = {
        (section, name): schema.flag_of(SECTION_TYPES[section], name)
        for section, values in given.items()
        for name in values
        if name != "preset"
    }
    return resolve_config(
        given, config_file=args.config, run_dir=run_dir, resume=args.resume, names=names
    )


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_train(args: argparse.Namespace) -> int:
    """Train, then evaluate on the test split and print where everything is."""
    from deep3dmm.nn import reuse_freed_memory
    from deep3dmm.train.distributed import shutdown_distributed
    from deep3dmm.train.trainer import train

    reuse_freed_memory()  # this process's large per-step tensors reuse heap blocks (CPU)

    if args.resume_from and not args.resume:
        raise ConfigError("--resume-from continues a run", fix="add --resume --out RUN")
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUN (the run folder to continue)")
    run_dir = Path(args.out) if args.out else new_run_dir()
    config = build_config(args, run_dir)
    if args.quiet:
        logging.getLogger("deep3dmm").setLevel(logging.WARNING)
    start = time.perf_counter()
    try:
        result = train(
            config,
            run_dir,
            resume=args.resume,
            resume_from=args.resume_from,
            quiet=args.quiet,
            hierarchy=args.hierarchy,
        )
    finally:
        shutdown_distributed()
    if not _is_main():
        return 0
    files_root = result.run_dir
    print(
        f"trained {files_root}: {result.epochs} epochs, best validation error "
        f"{result.best_val_mm:.3f} mm (epoch {result.best_epoch}), "
        f"{result.num_parameters:,} parameters, {result.train_seconds:.0f} s of training"
    )
    test_line = ""
    if not args.no_eval:
        from deep3dmm.analysis.evaluate import evaluate_run, format_table

        evaluation = evaluate_run(files_root, split="test", device=config.train.device,
                                  progress=not args.quiet)  # fmt: skip
        if not args.quiet:
            print(format_table(evaluation, max_rows=12))
        test_line = f"\n  test error      {evaluation.mean_mm:.3f} mm mean, " + (
            f"{evaluation.median_mm:.3f} mm median ({evaluation.num_meshes} meshes)"
        )
    print(
        f"run folder        {files_root}\n"
        f"  checkpoints     {files_root / 'checkpoints' / 'best.pt'} (best), last.pt\n"
        f"  metrics         {files_root / 'metrics.csv'}\n"
        f"  curves          {files_root / 'curves.png'}\n"
        f"  evaluation      {files_root / 'eval'}{test_line}\n"
        f"  wall time       {time.perf_counter() - start:.0f} s"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a run on one split and print the table."""
    from deep3dmm.analysis.evaluate import evaluate_run, format_table

    result = evaluate_run(
        args.run,
        split=args.split,
        data=args.data,
        checkpoint=args.checkpoint,
        device=args.device,
        progress=not args.quiet,
    )
    print(format_table(result))
    print(f"wrote {Path(args.run) / 'eval' / (args.split + '.json')}")
    return 0
