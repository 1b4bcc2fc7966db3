#!/usr/bin/env bash
# Set up .venv (first run only), then train and evaluate the default model end to end:
# the generated anny faces dataset, a spiral + attention (Deep3DMM) autoencoder, a short
# schedule (a few minutes on 2 CPU cores), the test error in mm and where the run folder is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
export PYVISTA_OFF_SCREEN=true MPLBACKEND=Agg
deep3dmm train
