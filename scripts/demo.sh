#!/usr/bin/env bash
# Set up .venv (first run only) and run the main job.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
export PYVISTA_OFF_SCREEN=true MPLBACKEND=Agg
mkdir -p runs/demo
deep3dmm mesh shape icosphere --out runs/demo/icosphere.ply
deep3dmm mesh info runs/demo/icosphere.ply
