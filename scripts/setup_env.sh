#!/usr/bin/env bash
# Create or update .venv with deep3dmm and the given extras (sourced by demo.sh and test.sh).
#   usage: source scripts/setup_env.sh [EXTRAS]     e.g. EXTRAS="test"
# Needs only python3 (>= 3.10) with pip and venv; cmake and g++ for openmesh, which pip
# builds from source. PyTorch is pinned to the CPU build (torch==2.13.0) so no CUDA wheels
# are pulled; an already-installed torch >= 2.1 is left alone.
# Re-running installs nothing when pyproject.toml and the extras have not changed.
# Callers that have their own arguments must pass EXTRAS explicitly (`source ... ""`):
# a sourced script sees the caller's "$@" when it is given none.
# DEEP3DMM_SKIP_SETUP=1: install nothing and use the python (and `deep3dmm`) already on PATH
# (an environment you manage yourself; the tests run the scripts this way).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
if [ "${DEEP3DMM_SKIP_SETUP:-0}" = 1 ]; then
  echo "[setup] DEEP3DMM_SKIP_SETUP=1: using $(command -v python3 || command -v python) as it is"
  return 0 2>/dev/null || exit 0
fi
VENV="${DEEP3DMM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# pip, without the machine-level notes about absent local index folders.
pip_quiet() {
  "$PY" -m pip --quiet --disable-pip-version-check "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }
}

if ! "$PY" -c 'import torch, sys; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(v < (2, 1))' 2>/dev/null; then
  echo "[setup] installing PyTorch 2.13.0 (CPU build)"
  pip_quiet install "torch==2.13.0"
fi

STAMP="$VENV/.deep3dmm-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) extras=[$EXTRAS]"
if [ ! -f "$STAMP" ] || ! grep -qxF "$WANT" "$STAMP" || ! "$PY" -c 'import deep3dmm, openmesh' 2>/dev/null; then
  echo "[setup] installing deep3dmm${EXTRAS:+[$EXTRAS]} and its dependencies (openmesh builds from source: ~3 min the first time)"
  SPEC="$ROOT"
  [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
  pip_quiet install -e "$SPEC"
  echo "$WANT" >> "$STAMP"
else
  echo "[setup] $VENV is up to date"
fi
export PATH="$VENV/bin:$PATH"

# three.js for `deep3dmm view`: npm ci from the tracked package-lock.json (node_modules is
# git-ignored); without npm, `deep3dmm view` says how to install it.
WEB="$ROOT/deep3dmm/viewer/web"
if [ ! -f "$WEB/node_modules/three/build/three.module.js" ] && command -v npm >/dev/null 2>&1; then
  echo "[setup] installing three.js for the viewer (npm ci)"
  npm ci --prefix "$WEB" --no-audit --no-fund --silent \
    || echo "[setup] npm ci failed: run 'deep3dmm view --setup' later"
fi
