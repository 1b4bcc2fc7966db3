#!/usr/bin/env bash
# Create/update .venv with the test extras and run the whole pytest suite (slow tests included).
#   ./scripts/test.sh [PYTEST ARGS]      e.g. ./scripts/test.sh -m "not slow" tests/mesh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh test
# Headless chromium for the viewer's browser test (skipped without it): installed when
# running as root with apt-get (as CI does), once.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
  && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  echo "[setup] installing chromium and chromium-driver (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
    >/dev/null 2>&1 || echo "[setup] could not install chromium: the browser test will be skipped"
fi
export PYVISTA_OFF_SCREEN=true MPLBACKEND=Agg
python -m ruff check deep3dmm tests scripts
# Two workers: this project is sized for a 2-core machine.
exec python -m pytest -n "${PYTEST_WORKERS:-2}" -q "$@"
