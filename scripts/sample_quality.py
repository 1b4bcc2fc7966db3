"""Sample quality of PCA, a plain autoencoder and a VAE on the default faces (docs/sampling.md).

Trains the three runs into ``--out`` when they are missing (the default anny faces
dataset, interpolation split, seed 0, latent 16; the autoencoders use the spiralnet++
preset, batch 16, early stopping; the autoencoder at most 30 epochs, the VAE
``--variational --beta 1e-3 --kl-warmup 5`` at most 24 epochs (the time the session had)
with a longer patience, because its warm-up raises the validation error at first), then
measures each on the test split with as many samples as the split holds (seed 0), at
temperatures 1 and 0.7, plus a reference row: an equally large subset of the training
meshes measured the same way. Prints a markdown table and writes
``--out/sample_quality.json``; with ``--pictures DIR`` also the sample grid and the
traversal strips of the docs.

    python scripts/sample_quality.py --out runs/sampling [--pictures docs/images]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from deep3dmm.atomic import atomic_write_text
from deep3dmm.cli import main as cli

COMMON = ["--latent", "16", "--seed", "0", "--quiet"]
DEEP = ["--preset", "spiralnet++", "--epochs", "30", "--batch-size", "16"]
RUNS = {
    "PCA": ["--preset", "pca", *COMMON],
    "autoencoder": [*DEEP, "--patience", "5", *COMMON],
    "VAE": [*DEEP, "--variational", "--beta", "0.001", "--kl-warmup", "5", "--patience", "8",
            "--epochs", "24", *COMMON],  # fmt: skip
}
TEMPERATURES = (1.0, 0.7)


def train_missing(out: Path) -> dict[str, Path]:
    """Train each run of :data:`RUNS` into ``out/<name>`` unless it has finished."""
    dirs = {}
    for name, args in RUNS.items():
        run = out / name.lower()
        if not (run / "eval" / "test.json").is_file():
            start = time.perf_counter()
            resume = ["--resume"] if (run / "config.toml").is_file() else []
            if cli(["train", *args, "--out", str(run), *resume]) != 0:
                raise SystemExit(f"training {name} failed")
            print(f"trained {name} in {time.perf_counter() - start:.0f} s")
        dirs[name] = run
    return dirs


def measure(dirs: dict[str, Path]) -> list[dict]:
    """One row per (run, temperature), plus the training-split reference."""
    from deep3dmm.analysis.sampling import measure_samples
    from deep3dmm.analysis.set_measures import set_measures
    from deep3dmm.train import load_checkpoint, load_run
    from deep3dmm.train.checkpoint import RunFiles

    rows = []
    for name, run_dir in dirs.items():
        run = load_run(run_dir)
        test = json.loads((run_dir / "eval" / "test.json").read_text())
        for temperature in TEMPERATURES:
            start = time.perf_counter()
            result = measure_samples(run, temperature=temperature, seed=0, progress=False)
            rows.append({"model": name, "temperature": temperature,
                         "epochs": int(load_checkpoint(RunFiles(run_dir).last)["epoch"]),
                         "best_epoch": int(run.checkpoint["epoch"]),
                         "reconstruction_mm": test["mean_mm"], **result.to_dict(),
                         "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    dataset = run.open_dataset()
    test_rows = np.sort(run.split["test"])
    picked = np.random.default_rng(0).choice(run.split["train"], len(test_rows), replace=False)
    reference = set_measures(
        np.asarray(dataset.vertices[np.sort(picked)]), np.asarray(dataset.vertices[test_rows]),
        scale=dataset.to_millimetres,
    )  # fmt: skip
    rows.append({"model": "training meshes (reference)", "temperature": None, "epochs": None,
                 "best_epoch": None, "reconstruction_mm": None, **reference.to_dict(),
                 "seconds": None})  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of :func:`measure` rows."""
    lines = [
        "| model | T | MMD (mm) | coverage | 1-NN accuracy | test reconstruction (mm) | epochs "
        "(best) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        t = "-" if r["temperature"] is None else f"{r['temperature']:g}"
        rec = "-" if r["reconstruction_mm"] is None else f"{r['reconstruction_mm']:.3f}"
        lines.append(
            f"| {r['model']} | {t} | {r['mmd']:.3f} | {100 * r['coverage']:.1f} % | "
            f"{100 * r['nna']:.1f} % | {rec} | "
            + ("-" if r["epochs"] is None else f"{r['epochs']} ({r['best_epoch']})")
            + " |"
        )
    return "\n".join(lines)


def pictures(dirs: dict[str, Path], folder: Path) -> None:
    """``sampling_grid.png`` (8 samples per model) and ``sampling_traverse.png``."""
    from deep3dmm.analysis.sampling import (
        decode_codes,
        latent_gaussian,
        sample_codes,
        traversal_codes,
    )
    from deep3dmm.train import load_run
    from deep3dmm.viz.render import render_meshes

    grid, titles, strips, strip_titles = [], [], [], []
    for name, run_dir in dirs.items():
        run = load_run(run_dir)
        faces = run.open_dataset(check_split=False).template.faces
        gaussian = latent_gaussian(run, progress=False)
        meshes = decode_codes(run, sample_codes(gaussian, 8, seed=0))
        grid += [(v, faces) for v in meshes]
        titles += [name] + [""] * 7
        if name in ("PCA", "VAE"):
            t, codes = traversal_codes(gaussian, 0, steps=7)
            strips += [(v, faces) for v in decode_codes(run, codes)]
            strip_titles += [f"{name} dim 0: {x:+.0f} sd" if k == 0 else f"{x:+.0f} sd"
                             for k, x in enumerate(t)]  # fmt: skip
    style = dict(panel_size=130, camera="front", title_size=7)
    render_meshes(grid, folder / "sampling_grid.png", grid=(len(dirs), 8), titles=titles, **style)
    render_meshes(strips, folder / "sampling_traverse.png", grid=(2, 7), titles=strip_titles,
                  **style)  # fmt: skip
    print(f"wrote {folder / 'sampling_grid.png'}, {folder / 'sampling_traverse.png'}")


def main() -> None:
    """Train what is missing, measure, print the table, write JSON (and pictures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the three runs")
    parser.add_argument("--pictures", type=Path, help="folder for the docs' PNG files")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}, cores: {os.cpu_count()}")
    dirs = train_missing(args.out)
    rows = measure(dirs)
    atomic_write_text(args.out / "sample_quality.json", json.dumps(rows, indent=2))
    print(table(rows))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.pictures:
        pictures(dirs, args.pictures)


if __name__ == "__main__":
    main()
