#!/usr/bin/env bash
# Shared body of train_coma.sh, train_dfaust.sh and train_hands.sh (sourced, not run).
# Expects: `usage` (prints the script's help), DATASET (name: data/DATASET, runs/DATASET),
# IMPORTER and IMPORT_ARGS (`deep3dmm data import IMPORTER DATA_ROOT IMPORT_ARGS...`), and
# the caller's arguments (DATA_ROOT). Env: PREPARED (prepared dataset folder, default
# data/DATASET), RUNS (runs folder, default runs/DATASET), EPOCHS (default 300),
# TRAIN_ARGS (extra `deep3dmm train` options, e.g. "--device cuda").
# Imports the data once, trains the four published configurations with their published
# schedules and fits the linear 3DMM (PCA) baseline at their two latent sizes (8 and 16),
# evaluates each on the test split and writes a comparison table. Re-running continues
# unfinished runs (--resume) and skips finished ones. DEEP3DMM_SKIP_SETUP=1 uses the current
# Python environment instead of .venv (see scripts/setup_env.sh).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  usage
  exit 2
fi
DATA_ROOT="$(cd "$1" && pwd)"
cd "$ROOT"
source scripts/setup_env.sh ""  # "": no extras (not this script's DATA_ROOT argument)
export MPLBACKEND=Agg
PREPARED="${PREPARED:-data/$DATASET}"
RUNS="${RUNS:-runs/$DATASET}"
if [ ! -f "$PREPARED/meta.json" ]; then
  deep3dmm data import "$IMPORTER" "$DATA_ROOT" "${IMPORT_ARGS[@]}" --out "$PREPARED"
fi

EPOCHS="${EPOCHS:-300}"
read -r -a EXTRA <<< "${TRAIN_ARGS:-}"

train_one() {  # NAME, then `deep3dmm train` options
  local name="$1"; shift
  local out="$RUNS/$name" resume=()
  [ -f "$out/config.toml" ] && resume=(--resume)
  echo "[train] $name -> $out"
  if [ ${#resume[@]} -eq 0 ]; then
    deep3dmm train --data "$PREPARED" --out "$out" --epochs "$EPOCHS" "$@" "${EXTRA[@]}"
  else
    deep3dmm train --out "$out" --resume --epochs "$EPOCHS" "${EXTRA[@]}"
  fi
}

# COMA (Ranjan et al. 2018): Chebyshev K=6, 16-16-16-32, latent 8, SGD 8e-3 momentum 0.9.
COMA_SCHEDULE=(--optimizer sgd --lr 8e-3 --momentum 0.9 --lr-decay 0.99 --batch-size 16)
# Neural3DMM / SpiralNet++: spiral L=9, 32-32-32-64, latent 16, Adam 1e-3.
SPIRAL_SCHEDULE=(--optimizer adam --lr 1e-3 --lr-decay 0.99 --batch-size 32)

fit_pca() {  # LATENT: the linear 3DMM, closed form on the CPU (TRAIN_ARGS do not apply)
  local out="$RUNS/pca-$1" resume=()
  [ -f "$out/config.toml" ] && resume=(--resume)
  echo "[train] pca latent $1 -> $out"
  if [ ${#resume[@]} -eq 0 ]; then
    deep3dmm train --data "$PREPARED" --out "$out" --preset pca --latent "$1"
  else
    deep3dmm train --out "$out" --resume
  fi
}

train_one coma --preset coma "${COMA_SCHEDULE[@]}"
train_one deep3dmm-spectral --preset deep3dmm-spectral "${COMA_SCHEDULE[@]}"
train_one neural3dmm --preset neural3dmm "${SPIRAL_SCHEDULE[@]}"
train_one deep3dmm-spiral --preset deep3dmm-spiral "${SPIRAL_SCHEDULE[@]}"
fit_pca 8   # COMA's latent size
fit_pca 16  # Neural3DMM's

deep3dmm runs compare "$RUNS/coma" "$RUNS/deep3dmm-spectral" "$RUNS/neural3dmm" \
  "$RUNS/deep3dmm-spiral" "$RUNS/pca-8" "$RUNS/pca-16" --markdown "$RUNS/compare.md"
echo "[train] comparison table: $RUNS/compare.md"
