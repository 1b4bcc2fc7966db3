#!/usr/bin/env bash
# Create/update .venv with the test extras and run the whole pytest suite (slow tests included).
#   ./scripts/test.sh [PYTEST ARGS]      e.g. ./scripts/test.sh -m "not slow" tests/mesh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh test
export PYVISTA_OFF_SCREEN=true MPLBACKEND=Agg
python -m ruff check deep3dmm tests scripts
# Two workers: this project is sized for a 2-core machine.
exec python -m pytest -n "${PYTEST_WORKERS:-2}" -q "$@"
