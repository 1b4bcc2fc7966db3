"""Measure how much the generated datasets behave like captures (docs/data.md, "Realism").

For each kind (default sizes, seed 0, noise-free) it prints, as markdown:
- the three properties of :mod:`deep3dmm.data.realism` (peak displacement, first-component
  residual share, naive transfer share), overall and per sequence;
- as a sanity check, a plain PCA (numpy SVD of the interpolation split's train meshes,
  mean-centred) and its test error in mm at latent 8, 16 and 32: a linear dataset gives
  ~0 mm at a small latent size.

    python scripts/data_realism.py --out /tmp/realism [--kinds faces hands bodies]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from deep3dmm.data import make_split
from deep3dmm.data.generate import GENERATORS
from deep3dmm.data.realism import measure_realism

LATENTS = (8, 16, 32)


def pca_test_errors(dataset, latents=LATENTS) -> dict[int, float]:
    """Mean per-vertex test error (mm) of a PCA fitted on the interpolation train split."""
    split = make_split(dataset, "interpolation")
    train = np.asarray(dataset.vertices[np.sort(split.train)], dtype=np.float64)
    test = np.asarray(dataset.vertices[np.sort(split.test)], dtype=np.float64)
    flat = train.reshape(len(train), -1)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)  # (R, 3V)
    centred = test.reshape(len(test), -1) - mean
    errors = {}
    for k in latents:
        basis = vt[:k]  # (k, 3V)
        recon = centred @ basis.T @ basis
        diff = (centred - recon).reshape(test.shape)
        errors[k] = float(np.linalg.norm(diff, axis=-1).mean() * dataset.to_millimetres)
    return errors


def main() -> None:
    """Generate each kind at its default size, measure, print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the datasets go")
    parser.add_argument("--kinds", nargs="+", default=["faces", "hands", "bodies"])
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}, cores: {os.cpu_count()}")
    overall = []
    for kind in args.kinds:
        start = time.perf_counter()
        data = GENERATORS[kind](args.out / kind, seed=0)
        seconds = time.perf_counter() - start
        report = measure_realism(data)
        summary = report.summary()
        pca = pca_test_errors(data)
        overall.append((kind, len(data), seconds, summary, pca))
        print(f"\n### {kind} ({len(data)} meshes, generated in {seconds:.1f} s)\n")
        print("| sequence | peak displacement (mm) | first-PC residual | naive transfer |")
        print("| --- | ---: | ---: | ---: |")
        for name, values in report.by_sequence().items():
            print(
                f"| {name} | {values['peak_mm']:.2f} | {100 * values['residual_share']:.0f} % "
                f"| {100 * values['transfer_share']:.0f} % |"
            )
    print(
        "\n| kind | meshes | peak displacement (mm) | first-PC residual | naive transfer "
        "| PCA 8 (mm) | PCA 16 (mm) | PCA 32 (mm) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, count, _, summary, pca in overall:
        print(
            f"| {kind} | {count} | {summary['peak_mm']:.2f} | "
            f"{100 * summary['residual_share']:.0f} % | {100 * summary['transfer_share']:.0f} % | "
            + " | ".join(f"{pca[k]:.3f}" for k in LATENTS)
            + " |"
        )
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
