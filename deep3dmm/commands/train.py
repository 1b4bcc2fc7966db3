"""``deep3dmm train`` and ``deep3dmm evaluate``.

``deep3dmm train`` with no arguments trains the embedded default (the anny faces
dataset, a spiral + attention autoencoder, a schedule of a few minutes on 2 CPU
cores), evaluates it and prints where everything is. Under
``torchrun --nproc_per_node=N -m deep3dmm train ...`` it trains with
DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import time
from pathlib import Path

from deep3dmm import schema
from deep3dmm.commands import add_checkpoint_option, add_split_option
from deep3dmm.errors import ConfigError
from deep3dmm.train.config import SECTION_TYPES, SECTIONS, RunConfig, TrainConfig, load_config

# The embedded default: minutes on 2 CPU cores (the published schedule is 300 epochs).
QUICK_TRAIN = {"epochs": 6, "batch_size": 16}

# Options that may change when a run is resumed; every other option must match the run.
RESUMABLE = {("train", "epochs"), ("train", "device"), ("train", "in_memory")}
RESUMABLE |= {("train", "num_workers"), ("train", "eval_batch_size")}
RESUMABLE |= {("train", "patience"), ("train", "min_delta")}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate``."""
    train = subparsers.add_parser(
        "train",
        help="train an autoencoder (no arguments: the embedded default in a few minutes)",
        description="Train a mesh autoencoder into a run folder, then evaluate it on the test "
        "split. Without arguments: the default anny faces dataset and a spiral + attention "
        "model for a few minutes. Options override --config, which overrides the defaults.",
    )
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

    evaluate = subparsers.add_parser(
        "evaluate",
        help="per-vertex error in mm of a trained run",
        description="Mean, median and std of the per-vertex Euclidean error in millimetres, "
        "per sequence; writes RUN/eval/<split>.json and RUN/eval/<split>_per_vertex.npy.",
    )
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


def build_config(args: argparse.Namespace, run_dir: Path) -> RunConfig:
    """The configuration of this invocation (resume: the stored one, checked against args)."""
    overrides = _overrides(args)
    if args.resume:
        stored = load_config(run_dir / "config.toml")
        given = overrides
        if args.config:  # the same command again, plus --resume: check the file too
            given = load_config(args.config).replace(**overrides).to_dict()
            for section, values in overrides.items():
                given[section].update(values)
        _check_resume(stored, given, run_dir / "config.toml")
        train = {k: v for k, v in given.get("train", {}).items() if ("train", k) in RESUMABLE}
        return stored.replace(train=train)
    if args.config:
        base = load_config(args.config)
    elif "data" in overrides and "path" in overrides["data"]:
        base = RunConfig()
    else:  # the embedded default
        base = RunConfig(train=TrainConfig(**QUICK_TRAIN))
    model = overrides.get("model", {})
    if (model.get("preset") or base.model.preset) == "pca":  # refuse what cannot apply
        from deep3dmm.train.pca_run import check_pca_options

        flags = {
            (section, name): schema.flag_of(SECTION_TYPES[section], name)
            for section, values in overrides.items()
            for name in values
            if name != "preset"
        }
        check_pca_options(overrides, flags)
    return base.replace(**overrides)


def _check_resume(stored: RunConfig, given: dict[str, dict], path: Path) -> None:
    """Refuse options that differ from the run being resumed (except RESUMABLE ones)."""
    for section, values in given.items():
        for option, value in values.items():
            if (section, option) in RESUMABLE or (section, option) == ("data", "path"):
                continue
            current = getattr(getattr(stored, section), option)
            if isinstance(value, list):
                value = tuple(value)
            if value != current:
                raise ConfigError(
                    f"the run was trained with {section}.{option} = {current!r}, not "
                    f"{value!r}; --resume continues the stored configuration",
                    path=path,
                    fix="drop that option (only --epochs, --device, --in-memory, --workers "
                    "may change), or start a new run with another --out",
                )
    data = given.get("data", {}).get("path")
    if data and Path(data).resolve() != Path(stored.data.path).resolve():
        raise ConfigError(
            f"the run was trained on {stored.data.path}, not {data}",
            path=path,
            fix="drop --data (the run knows its dataset) or start a new run",
        )


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_train(args: argparse.Namespace) -> int:
    """Train, then evaluate on the test split and print where everything is."""
    from deep3dmm.train.distributed import shutdown_distributed
    from deep3dmm.train.trainer import train

    if args.resume_from and not args.resume:
        raise ConfigError("--resume-from continues a run", fix="add --resume --out RUN")
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out RUN (the run folder to continue)")
    if args.out:
        run_dir = Path(args.out)
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path("runs") / stamp
    if args.resume and not (run_dir / "config.toml").is_file():
        raise ConfigError(
            "no run to resume here (config.toml missing)",
            path=run_dir,
            fix="check --out, or start the run without --resume",
        )
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
