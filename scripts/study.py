#!/usr/bin/env python
"""The accuracy study: PCA / COMA / SpiralNet++ / Deep3DMM (spectral, spiral) on the data here.

Runs (each one a run folder of ``deep3dmm train``, under ``--root``, default ``runs/study``):

1. faces, latent 16, the four deep methods and the linear 3DMM (PCA; the main table);
2. faces at latents 8, 32, 64 (all five methods);
3. anny bodies, anny hands (interpolation split) and ICT faces (``../shared/data/ict_face``,
   identity split: unseen people, when the file is present) at latent 16, with PCA at
   every latent (a closed-form fit costs seconds);
4. with ``--ablation``: the aggregation ablation on the spiral backbone at latent 16: fixed
   only (= SpiralNet++), learned head only (``attention_mode="learned"``), fused
   (= Deep3DMM spiral, top-k 8/32), fused with top-k 4, 8, 16, 32 in both directions.

Deep runs train until the validation error stops improving (:data:`REDUCED`: ``patience``
epochs without a ``min_delta`` relative improvement), with an epoch cap per dataset; the
tables say whether each run converged or hit the cap. The default grid and dataset sizes
are sized so the whole study takes about two hours on 2 CPU cores (``--list`` prints the
estimate, from :data:`SECONDS_PER_MESH_EPOCH`, measured); the published schedules
(``--full``, 300 epochs, for a GPU) are in :data:`FULL`. Every run resumes: a killed study,
started again with the same command, skips finished runs and continues the unfinished one
from its last completed epoch (the trainer's ``--resume``). Each root keeps its own copy of
the datasets (``ROOT/data``): after the generators change, start a fresh ``--root``.

    python scripts/study.py                       # the whole study, then docs/results.md
    python scripts/study.py --only 'faces/latent16/*'
    python scripts/study.py --list                # the plan and what is finished
    python scripts/study.py --report              # only regenerate docs/results.md
    python scripts/study.py --full --device cuda  # published schedules into runs/study-full
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, study_reading.py
SHARED = ROOT.parent / "shared" / "data"
ICT_PATH = SHARED / "ict_face" / "ict_face_region.npz"
log = logging.getLogger("study")

METHODS = {  # method -> (preset, label, backbone, pooling)
    "coma": ("coma", "COMA (spectral, fixed)", "spectral", "fixed"),
    "spiralnet++": ("spiralnet++", "SpiralNet++ (spiral, fixed)", "spiral", "fixed"),
    "deep3dmm-spectral": ("deep3dmm-spectral", "Deep3DMM spectral (attention)", "spectral",
                          "attention"),
    "deep3dmm-spiral": ("deep3dmm-spiral", "Deep3DMM spiral (attention)", "spiral", "attention"),
    "pca": ("pca", "PCA (linear 3DMM)", "linear", "-"),
}  # fmt: skip
DEEP = tuple(m for m in METHODS if m != "pca")
ATTENTION_OF = {"coma": "deep3dmm-spectral", "spiralnet++": "deep3dmm-spiral"}
LATENTS = (16, 8, 32, 64)

# Datasets: how each one is made, its split protocol and a description for the report.
DATASETS = {
    "faces": dict(protocol="interpolation", label="anny faces (interpolation split)"),
    "bodies": dict(protocol="interpolation", label="anny bodies (interpolation split)"),
    "hands": dict(protocol="interpolation", label="anny hands (interpolation split)"),
    "ict": dict(protocol="identity", label="ICT faces (identity split: unseen people)"),
}
SIZES = {  # generator / importer arguments (the reduced and the full study use the same data)
    "faces": dict(subjects=10, sequences=12, frames=10),  # as the default faces dataset
    "bodies": dict(subjects=5, sequences=5, frames=8),
    "hands": dict(subjects=10, sequences=6, frames=10),
    "ict": dict(identities=8, sequences=8, frames=10),
}
TINY_SIZES = {
    "faces": dict(subjects=2, sequences=2, frames=10),
    "bodies": dict(subjects=2, sequences=2, frames=10),
    "hands": dict(subjects=2, sequences=2, frames=10),
    "ict": dict(identities=3, sequences=2, frames=10),
}

# Schedules: per dataset, epochs and batch size; every method uses the same optimiser in the
# reduced study (Adam 1e-3, decay 0.99 per epoch) so that differences come from the models.
REDUCED = {
    "optim": dict(optimizer="adam", lr=1e-3, lr_decay=0.99),
    "epochs": {"faces": 30, "bodies": 25, "hands": 40, "ict": 25},  # caps
    "patience": 6,
    "min_delta": 0.01,
    "batch_size": 16,
}
# Seconds per training mesh and epoch (validation included) on 2 CPU cores, per dataset and
# method: the planning estimate of --list. Measured: the quiet-machine runs (load ~2) of the
# previous study (20 / 8 / 20 / 10 epochs; docs/results.md of 2026-11-21), before the later
# attention speed-ups, so conservative. Caps x these = about 1.9 h for the default grid.
SECONDS_PER_MESH_EPOCH = {
    "faces": {"coma": 0.0056, "spiralnet++": 0.0078, "deep3dmm-spectral": 0.0104,
              "deep3dmm-spiral": 0.0128},
    "bodies": {"coma": 0.0201, "spiralnet++": 0.0238, "deep3dmm-spectral": 0.0585,
               "deep3dmm-spiral": 0.130},
    "hands": {"coma": 0.0050, "spiralnet++": 0.0075, "deep3dmm-spectral": 0.0138,
              "deep3dmm-spiral": 0.0119},
    "ict": {"coma": 0.0119, "spiralnet++": 0.0181, "deep3dmm-spectral": 0.0188,
            "deep3dmm-spiral": 0.0250},
}  # fmt: skip
# The published schedules (docs/training.md presets): COMA-style models SGD 8e-3, momentum
# 0.9, batch 16; spiral models Adam 1e-3, batch 32; 300 epochs, decay 0.99.
FULL = {
    "spectral": dict(optimizer="sgd", lr=8e-3, momentum=0.9, lr_decay=0.99, batch_size=16),
    "spiral": dict(optimizer="adam", lr=1e-3, lr_decay=0.99, batch_size=32),
    "epochs": 300,
}
TINY = {"epochs": 2, "batch_size": 8, "patience": 1}


@dataclass(frozen=True)
class RunSpec:
    """One training run of the study.

    Attributes:
        name: ``<dataset>/<group>/<method>``, also the run folder under the study root.
        dataset: key of :data:`DATASETS`.
        method: key of :data:`METHODS` (the preset and its backbone).
        latent: latent size.
        model: extra model options (ablations: ``attention_mode``, ``top_k``).
        label: what the run is, in words.
    """

    name: str
    dataset: str
    method: str
    latent: int
    model: dict = field(default_factory=dict)
    label: str = ""


def plan(*, ict: bool = True, ablation: bool = False) -> list[RunSpec]:
    """All runs, most important first (see the module docstring)."""

    def main(dataset: str, latent: int, methods=tuple(METHODS)) -> list[RunSpec]:
        return [
            RunSpec(f"{dataset}/latent{latent}/{m}", dataset, m, latent, label=METHODS[m][1])
            for m in methods
        ]

    runs = main("faces", 16)
    for latent in LATENTS[1:]:
        runs += main("faces", latent)
    for dataset in ("bodies", "hands", "ict") if ict else ("bodies", "hands"):
        runs += main(dataset, 16)
        for latent in LATENTS[1:]:
            runs += main(dataset, latent, ("pca",))
    if not ablation:
        return runs
    learned = {"attention_mode": "learned"}
    runs += [RunSpec("faces/ablation/learned", "faces", "deep3dmm-spiral", 16, learned,
                     "learned head only (no fixed prior)")]  # fmt: skip
    runs += [
        RunSpec(
            f"faces/ablation/topk{k}",
            "faces",
            "deep3dmm-spiral",
            16,
            {"top_k": (k, k)},
            f"fused, top-k {k} down and up",
        )  # fmt: skip
        for k in (4, 8, 16, 32)
    ]
    return runs


# ---------------------------------------------------------------------------------- data
def ensure_dataset(name: str, root: Path, *, tiny: bool) -> Path:
    """The prepared dataset ``name``, made once under ``root/data`` and reused by every run
    (its own copy, so a later change of the generators cannot mix datasets in one study)."""
    from deep3dmm.data import PreparedDataset
    from deep3dmm.errors import DatasetError

    sizes = (TINY_SIZES if tiny else SIZES)[name]
    path = root / "data" / name
    if path.is_dir():
        try:
            PreparedDataset(path)
            return path
        except DatasetError as exc:
            log.warning("remaking %s: %s", path, exc)
    print(f"making the {name} dataset {sizes} into {path}", flush=True)
    if name == "ict":
        from deep3dmm.data.importers import import_dataset

        import_dataset("ict", ICT_PATH, path, **sizes)
    else:
        from deep3dmm.data.generate import GENERATORS

        GENERATORS[name](path, **sizes)
    return path


# ---------------------------------------------------------------------------------- runs
def run_config(spec: RunSpec, data: Path, *, full: bool, tiny: bool, device: str):
    """The :class:`~deep3dmm.train.RunConfig` of one run."""
    from deep3dmm.train import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig

    preset, _, backbone, _ = METHODS[spec.method]
    data_config = DataConfig(path=str(data), protocol=DATASETS[spec.dataset]["protocol"])
    if spec.method == "pca":  # closed form: no optimiser, epochs or batches
        return RunConfig(data=data_config, model=ModelConfig.from_preset("pca", latent=spec.latent),
                         train=TrainConfig(seed=0, device=device))  # fmt: skip
    patience, min_delta = REDUCED["patience"], REDUCED["min_delta"]
    if full:
        sched = dict(FULL[backbone])
        batch, epochs = sched.pop("batch_size"), FULL["epochs"]
        optim, patience = OptimConfig(**sched), 0  # as published: all 300 epochs
    else:
        optim = OptimConfig(**REDUCED["optim"])
        batch, epochs = REDUCED["batch_size"], REDUCED["epochs"][spec.dataset]
    if tiny:
        batch, epochs, patience = TINY["batch_size"], TINY["epochs"], TINY["patience"]
    return RunConfig(
        data=data_config,
        model=ModelConfig.from_preset(preset, latent=spec.latent, **spec.model),
        optim=optim,
        train=TrainConfig(epochs=epochs, batch_size=batch, seed=0, device=device,
                          patience=patience, min_delta=min_delta),  # fmt: skip
    )


def epochs_of(spec: RunSpec, args) -> int:
    """The epoch cap the schedule of ``args`` gives this run (1: the PCA fit)."""
    if spec.method == "pca":
        return 1
    if args.tiny:
        return TINY["epochs"]
    return FULL["epochs"] if args.full else REDUCED["epochs"][spec.dataset]


def is_finished(spec: RunSpec, root: Path, args) -> bool:
    """Trained for all the epochs of the schedule, and its stored test evaluation belongs to
    the current best checkpoint, split and dataset content (its provenance record; a run
    extended by more epochs, or whose dataset was regenerated, is re-evaluated)."""
    from deep3dmm.analysis.compare import summarize_run
    from deep3dmm.train import RunFiles

    files = RunFiles(root / spec.name)
    if not ((files.eval / "test.json").is_file() and files.last.is_file()):
        return False
    summary = summarize_run(files.root)
    if summary.stale is not None:
        log.info("%s: re-evaluating (%s)", files.root, summary.stale)
        return False
    return summary.epochs >= epochs_of(spec, args) or convergence(files.root) == "yes"


def convergence(run_dir: Path) -> str:
    """"yes" (early stopping ended the run), "no" (not stopped by patience: the cap, or
    still running) or "closed form" (PCA), from the run's config and last checkpoint."""
    from deep3dmm.train import RunFiles, load_checkpoint, load_config

    files = RunFiles(run_dir)
    config = load_config(files.config)
    if config.model.kind == "pca":
        return "closed form"
    state = load_checkpoint(files.last)
    stall = int(state.get("stall", state["best"])["epoch"])
    patience = config.train.patience
    return "yes" if patience and int(state["epoch"]) - stall >= patience else "no"


def run_one(spec: RunSpec, root: Path, args) -> None:
    """Train (resuming) and evaluate one run."""
    from deep3dmm.analysis.evaluate import evaluate_run
    from deep3dmm.atomic import atomic_write_text
    from deep3dmm.train import train

    run_dir = root / spec.name
    data = ensure_dataset(spec.dataset, root, tiny=args.tiny)
    config = run_config(spec, data, full=args.full, tiny=args.tiny, device=args.device)
    load_start = os.getloadavg()[0]
    train(config, run_dir, resume=True, quiet=args.quiet)
    evaluate_run(run_dir, split="test", device=args.device, progress=False)
    # How loaded the machine was while this run (its last session) trained: the training
    # times in the report are only comparable between runs with similar loads.
    load = {"load_start": round(load_start, 2), "load_end": round(os.getloadavg()[0], 2)}
    atomic_write_text(run_dir / "study_load.json", json.dumps(load))


def planned_seconds(spec: RunSpec, *, tiny: bool = False) -> float:
    """Worst-case training seconds of a run on 2 CPU cores (deep: to its epoch cap)."""
    sizes = (TINY_SIZES if tiny else SIZES)[spec.dataset]
    train = 0.8 * math.prod(sizes.values())  # meshes in the train split
    if spec.method == "pca":
        return 30.0  # measured on the default faces (972 train meshes): 2.5-9 s CPU
    cap = TINY["epochs"] if tiny else REDUCED["epochs"][spec.dataset]
    return cap * train * SECONDS_PER_MESH_EPOCH[spec.dataset][spec.method]


def select(runs: list[RunSpec], pattern: str | None) -> list[RunSpec]:
    """Runs whose name matches ``pattern`` (a glob, or a substring when it has no wildcard)."""
    if not pattern:
        return runs
    if any(c in pattern for c in "*?["):
        return [r for r in runs if fnmatch.fnmatch(r.name, pattern)]
    return [r for r in runs if pattern in r.name]


# ---------------------------------------------------------------------------------- report
def _mm(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _load(run_dir: Path) -> str:
    """'start-end' load average of the run's last training session ('-' if unknown)."""
    path = run_dir / "study_load.json"
    if not path.is_file():
        return "-"
    load = json.loads(path.read_text())
    return f"{load['load_start']:.1f}-{load['load_end']:.1f}"


def _collect(runs: list[RunSpec], root: Path, args) -> tuple[dict, dict[str, str]]:
    """Per run name: its summary (``None`` when not finished) and its convergence."""
    from deep3dmm.analysis.compare import summarize_run

    out, converged = {}, {}
    for spec in runs:
        run_dir = root / spec.name
        try:
            done = is_finished(spec, root, args)
        except Exception as exc:  # a damaged or half-written run counts as not finished
            log.warning("%s: %s", run_dir, exc)
            done = False
        out[spec.name] = summarize_run(run_dir) if done else None
        converged[spec.name] = convergence(run_dir) if done else ""
    return out, converged


def reading_rows(runs: list[RunSpec], results, converged) -> list:
    """The finished runs as :class:`study_reading.Result` rows (main grid only)."""
    from study_reading import Result

    rows = []
    for spec in runs:
        s = results.get(spec.name)
        if s is None or "/latent" not in spec.name:
            continue
        state = converged.get(spec.name)
        rows.append(Result(spec.dataset, spec.method, spec.latent, s.test["mean_mm"], s.epochs,
                           None if state == "closed form" else state == "yes",
                           s.train_seconds))  # fmt: skip
    return rows


def _schedule_text(args) -> str:
    if args.full:
        return (
            f"**Published schedules** (`--full`): {FULL['epochs']} epochs, decay 0.99 per epoch; "
            "spectral models SGD 8e-3, momentum 0.9, batch 16; spiral models Adam 1e-3, "
            "batch 32."
        )
    if args.tiny:
        return f"**Tiny smoke schedule** (`--tiny`): {TINY} on tiny datasets {TINY_SIZES}."
    epochs = ", ".join(f"{k} {v}" for k, v in REDUCED["epochs"].items())
    return (
        f"**Reduced schedule** (default, sized for about two hours on a 2-core CPU): Adam 1e-3 "
        f"for every deep method (COMA's SGD 8e-3 needs its 300 epochs), decay 0.99 per epoch, "
        f"batch {REDUCED['batch_size']}, seed 0; each deep run trains until its validation "
        f"error has not improved by {REDUCED['min_delta']:.0%} for {REDUCED['patience']} "
        f"epochs (early stopping; best-validation checkpoint), capped at (epochs per "
        f"dataset) {epochs}. PCA is fitted in closed form (SVD of the training split). "
        "Datasets: " + "; ".join(f"{k} {v}" for k, v in SIZES.items())
        + " (subjects/identities x sequences x frames). The published schedules (300 "
        "epochs, no early stopping) are `python scripts/study.py --full --device cuda`. One "
        "seed per configuration."
    )


def _dataset_section(name: str, runs, results, converged, args) -> list[str]:
    lines = [f"### {DATASETS[name]['label']}", ""]
    lines += [
        "| method | latent | parameters | epochs (cap) | converged | training time | load avg "
        "| test mean mm | median mm | std mm |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    specs = sorted((s for s in runs if s.dataset == name and "/latent" in s.name),
                   key=lambda s: (s.latent, list(METHODS).index(s.method)))  # fmt: skip
    for spec in specs:
        s = results[spec.name]
        if s is None:
            lines.append(f"| {spec.label} | {spec.latent} | | | | not run yet | | | | |")
            continue
        cap = "" if spec.method == "pca" else f" ({epochs_of(spec, args)})"
        state = converged[spec.name]
        state = "**no** (cap)" if state == "no" else state
        lines.append(
            f"| {spec.label} | {spec.latent} | {s.num_parameters:,} | {s.epochs}{cap} | {state} "
            f"| {s.train_seconds / 60:.1f} min | {_load(s.run)} | {_mm(s.test['mean_mm'])} | "
            f"{_mm(s.test['median_mm'])} | {_mm(s.test['std_mm'])} |"
        )
    latents = sorted({s.latent for s in specs})
    if len(latents) > 1:
        lines += ["", "Test mean error (mm) by latent size:", ""]
        lines.append("| method | " + " | ".join(f"latent {z}" for z in latents) + " |")
        lines.append("|---|" + "---:|" * len(latents))
        planned = {s.name for s in specs}
        for method in METHODS:
            cells = []
            for z in latents:
                key = f"{name}/latent{z}/{method}"
                s = results.get(key)
                cells.append(_mm(s.test["mean_mm"]) if s else
                             ("not run yet" if key in planned else "-"))  # fmt: skip
            lines.append(f"| {METHODS[method][1]} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pairs(results, runs):
    """(dataset, latent, backbone, fixed summary, attention summary) for finished pairs."""
    out = []
    for spec in runs:
        if spec.method in ATTENTION_OF and "/latent" in spec.name:
            fixed = results.get(spec.name)
            att = results.get(spec.name.replace(spec.method, ATTENTION_OF[spec.method]))
            if fixed and att:
                out.append((spec.dataset, spec.latent, METHODS[spec.method][2], fixed, att))
    return out


def _reading(results, runs, converged) -> list[str]:
    """An honest reading generated from the numbers: who wins where (PCA included), by how
    much, and where attention pooling helps."""
    from study_reading import deep_vs_linear, winners

    rows = reading_rows(runs, results, converged)
    labels = {m: METHODS[m][1] for m in METHODS}
    names = {d: DATASETS[d]["label"] for d in DATASETS}
    lines = ["## Reading", ""]
    lines += ["### Who wins (per dataset and latent size)", ""]
    lines += winners(rows, labels, names) or ["No dataset/latent cell with two finished runs."]
    lines += [""] + deep_vs_linear(rows, names) + ["", "### Attention pooling", ""]
    pairs = _pairs(results, runs)
    if not pairs:
        return lines + ["No finished fixed/attention pair yet.", ""]
    changes = []
    for dataset, latent, backbone, fixed, att in pairs:
        f, a = fixed.test["mean_mm"], att.test["mean_mm"]
        changes.append(((a - f) / f * 100.0, dataset, latent, backbone, f, a, fixed, att))
    better = [c for c in changes if c[0] < 0]
    lines.append(
        f"- Attention pooling lowered the test mean error in **{len(better)} of {len(changes)}** "
        f"finished fixed/attention pairs (same backbone, dataset and latent size); median "
        f"relative change {statistics.median(c[0] for c in changes):+.1f} % "
        f"(negative = attention better)."
    )
    for backbone in ("spectral", "spiral"):
        sub = [c for c in changes if c[3] == backbone]
        if sub:
            wins = sum(c[0] < 0 for c in sub)
            lines.append(
                f"- {backbone} backbone: attention better in {wins} of {len(sub)} pairs, "
                f"median change {statistics.median(c[0] for c in sub):+.1f} %, range "
                f"{min(c[0] for c in sub):+.1f} % to {max(c[0] for c in sub):+.1f} %."
            )
    for dataset in DATASETS:
        sub = [c for c in changes if c[1] == dataset]
        if sub:
            text = ", ".join(
                f"{c[3]} latent {c[2]}: {c[4]:.3f} -> {c[5]:.3f} mm ({c[0]:+.1f} %)" for c in sub
            )
            lines.append(f"- {DATASETS[dataset]['label']}: {text}.")
    by_dataset = {
        d: statistics.median(c[0] for c in changes if c[1] == d)
        for d in DATASETS
        if any(c[1] == d for c in changes)
    }
    if len(by_dataset) > 1:
        ranked = sorted(by_dataset, key=by_dataset.get)
        lines.append(
            "- By dataset (median change): "
            + ", ".join(f"{DATASETS[d]['label']} {by_dataset[d]:+.1f} %" for d in ranked)
            + f". Attention helps most on {DATASETS[ranked[0]]['label']} and least on "
            f"{DATASETS[ranked[-1]]['label']}."
        )
    for dataset in by_dataset:
        sub = [c for c in changes if c[1] == dataset]
        best = min([(c[5], c[7].epochs) for c in sub] + [(c[4], c[6].epochs) for c in sub])
        if best[0] > 10.0:
            lines.append(
                f"- {DATASETS[dataset]['label']}: even the best model is {best[0]:.1f} mm off "
                f"after {best[1]} epochs: far from converged, so read its table as an early "
                "ranking, not as the methods' accuracy."
            )
    ratios = [c[7].num_parameters / c[6].num_parameters for c in changes]
    lines.append(
        f"- Cost: the attention models train {min(ratios):.1f}-{max(ratios):.1f}x the "
        "parameters (the keys and queries; frozen for inference they add none). Their speed "
        "cost is measured in one run in docs/benchmarks.md; the training times above come "
        "from runs under different loads and are not compared here."
    )
    lines.append(
        "- One seed per configuration and short schedules: differences of a few per cent are "
        "within what another seed or more epochs could change; the published schedules "
        "(`--full`) are the test of the paper's claims."
    )
    return lines + [""]


def _ablation(results, runs) -> list[str]:
    rows = [
        ("fixed only (SpiralNet++)", "faces/latent16/spiralnet++"),
        ("learned head only", "faces/ablation/learned"),
        ("fused, top-k 8 down / 32 up (Deep3DMM default)", "faces/latent16/deep3dmm-spiral"),
    ] + [(f"fused, top-k {k} down and up", f"faces/ablation/topk{k}") for k in (4, 8, 16, 32)]
    names = {s.name for s in runs}
    rows = [r for r in rows if r[1] in names]
    if not rows:
        return []
    lines = [
        "### Aggregation ablation (anny faces, spiral backbone, latent 16)",
        "",
        "| aggregation | run | parameters | test mean mm | median mm | std mm |",
        "|---|---|---:|---:|---:|---:|",
    ]
    done = []
    for label, name in rows:
        s = results.get(name)
        if s is None:
            lines.append(f"| {label} | `{name}` | | not run yet | | |")
            continue
        done.append((s.test["mean_mm"], label))
        lines.append(
            f"| {label} | `{name}` | {s.num_parameters:,} | {_mm(s.test['mean_mm'])} | "
            f"{_mm(s.test['median_mm'])} | {_mm(s.test['std_mm'])} |"
        )
    if len(done) > 1:
        best, worst = min(done), max(done)
        lines += [
            "",
            f"Best: {best[1]} ({best[0]:.3f} mm); worst: {worst[1]} ({worst[0]:.3f} mm), "
            f"{(worst[0] - best[0]) / best[0] * 100:.1f} % higher.",
        ]
    return lines + [""]


def write_report(runs: list[RunSpec], root: Path, docs: Path, args) -> Path:
    """Write the results page from the finished runs' stored evaluations."""
    from machine import machine_description
    from study_reading import published_addition

    from deep3dmm.atomic import atomic_write_text

    results, converged = _collect(runs, root, args)
    finished = [s.name for s in runs if results[s.name]]
    missing = [s.name for s in runs if not results[s.name]]
    figure_lines = _figure(runs, root, docs, results)
    try:
        rel_root = root.resolve().relative_to(ROOT)
    except ValueError:
        rel_root = root
    lines = [
        "# Results: reconstruction error of PCA, COMA, SpiralNet++ and Deep3DMM",
        "",
        "Generated by `python scripts/study.py --report` from the runs' stored evaluations "
        f"(`{rel_root}/<run>/eval/test.json`); never edit by hand.",
        "",
        f"Machine: {machine_description(args.device)}.",
        "",
        *([args.note, ""] if args.note else []),
        _schedule_text(args),
        "",
        *([published_addition(reading_rows(runs, results, converged), FULL["epochs"]), ""]
          if not args.full else []),
        "Error: mean / median / std over all vertices of all test meshes of the per-vertex "
        "Euclidean distance in mm (best-validation checkpoint). Parameters: trainable "
        "parameters while training (attention keys/queries included). Training time: wall "
        "clock; *load avg* is the 1-minute load average of the machine at the start and the "
        f"end of the run's last training session on {os.cpu_count()} logical CPUs: a load "
        "above the CPU count means the run shared the machine and its time is inflated.",
        "",
        f"**Status: {len(finished)} of {len(runs)} runs finished.**"
        + (f" Not run yet: {', '.join(f'`{m}`' for m in missing)}." if missing else "")
        + f" Run folders: `{rel_root}/<run>`; `python scripts/study.py"
        + (" --full" if args.full else "")
        + "` continues the study (finished runs are skipped, an interrupted one resumes "
        "from its last epoch) and rewrites this page.",
        "",
        "## Tables",
        "",
    ]
    present = [d for d in DATASETS if any(s.dataset == d for s in runs)]
    for name in present:
        lines += _dataset_section(name, runs, results, converged, args)
        if name == "faces":
            lines += _ablation(results, runs) + figure_lines
    if not ICT_PATH.is_file():
        lines += ["ICT: `../shared/data/ict_face/ict_face_region.npz` absent; not run.", ""]
    lines += _reading(results, runs, converged)
    atomic_write_text(docs, "\n".join(lines))
    return docs


def _shrink_png(path: Path, *, width: int = 1400, colors: int = 192) -> None:
    """Keep a committed figure small (< ~300 KB): downscale and palette-quantise in place."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _figure(runs, root: Path, docs: Path, results) -> list[str]:
    """The comparison figure of the four faces latent-16 runs (when finished)."""
    names = [f"faces/latent16/{m}" for m in METHODS]
    if not all(results.get(n) for n in names if n in {s.name for s in runs}) or not any(
        results.get(n) for n in names
    ):
        return ["(Comparison figure: after the four faces latent-16 runs finish.)", ""]
    from deep3dmm.analysis.heatmaps import compare_figure

    image = docs.parent / "images" / "study_faces_latent16.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    done = [root / n for n in names if results.get(n)]
    try:
        compare_figure(done, image, count=4)
        _shrink_png(image)
    except Exception as exc:  # rendering needs a working VTK; the tables do not
        log.warning("comparison figure failed: %s", exc)
        return [f"(Comparison figure failed: {exc}.)", ""]
    rel = image.relative_to(docs.parent)
    return [
        "Test meshes of the faces dataset reconstructed by the four latent-16 runs (columns: "
        + ", ".join(r.name for r in done)
        + "), with per-vertex error maps (0-5 mm):",
        "",
        f"![faces latent 16]({rel.as_posix()})",
        "",
    ]


# ---------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="run folders (default runs/study, "
                        "runs/study-full with --full)")  # fmt: skip
    parser.add_argument("--only", default=None, help="run names matching this glob/substring")
    parser.add_argument("--full", action="store_true", help="the published schedules (GPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny data and 1 epoch (tests)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--report", action="store_true", help="only regenerate the report")
    parser.add_argument("--list", action="store_true", help="print the plan and its status")
    parser.add_argument("--docs", default=None, help="report path (default docs/results.md; "
                        "ROOT/results.md with --tiny)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    parser.add_argument("--note", default="", help="how the study was run (e.g. parallel "
                        "workers), printed under the machine line of the report")
    parser.add_argument("--ablation", action="store_true", help="add the aggregation ablation "
                        "(5 more deep runs on faces)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT))
    import torch

    from deep3dmm.nn import reuse_freed_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()
    root = Path(args.root or ("runs/study-full" if args.full else "runs/study"))
    docs = Path(args.docs) if args.docs else (root / "results.md" if args.tiny else
                                              ROOT / "docs" / "results.md")  # fmt: skip
    runs = plan(ict=ICT_PATH.is_file(), ablation=args.ablation)
    chosen = select(runs, args.only)
    if not chosen:
        print(f"no run matches {args.only!r}; see --list", file=sys.stderr)
        return 2
    if args.list:
        results, _ = _collect(chosen, root, args)
        total = 0.0
        for spec in chosen:
            seconds = planned_seconds(spec, tiny=args.tiny)
            total += seconds if not results[spec.name] else 0.0
            print(f"{'done' if results[spec.name] else 'todo'}  {spec.name}  ({spec.label}; "
                  f"at most {seconds / 60:.0f} min)")  # fmt: skip
        print(f"at most {total / 3600:.1f} h to go on 2 CPU cores (every deep run to its cap; "
              "early stopping ends most sooner)")  # fmt: skip
        return 0
    if not args.report:
        todo = [s for s in chosen if not is_finished(s, root, args)]
        print(f"study: {len(chosen) - len(todo)} of {len(chosen)} runs finished, "
              f"{len(todo)} to go, into {root}", flush=True)  # fmt: skip
        for i, spec in enumerate(todo, 1):
            start = time.perf_counter()
            print(f"[{i}/{len(todo)}] {spec.name}: {spec.label}, latent {spec.latent}",
                  flush=True)  # fmt: skip
            run_one(spec, root, args)
            print(f"[{i}/{len(todo)}] {spec.name} finished in "
                  f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)  # fmt: skip
    report_runs = chosen if args.tiny else runs
    path = write_report(report_runs, root, docs, args)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
