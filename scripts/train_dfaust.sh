#!/usr/bin/env bash
# Train COMA, Neural3DMM and their Deep3DMM attention variants, and fit the PCA baseline,
# on DFAUST bodies.
#   usage: scripts/train_dfaust.sh DATA_ROOT
#   env:   EPOCHS (default 300), PREPARED (default data/dfaust), RUNS (default runs/dfaust),
#          TRAIN_ARGS (extra `deep3dmm train` options, e.g. "--device cuda"),
#          DEEP3DMM_SKIP_SETUP=1 (use the current Python environment instead of .venv)
# See docs/training.md for the configurations and expected run times.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: scripts/train_dfaust.sh DATA_ROOT

Needs the DFAUST registrations (Bogo et al., CVPR 2017): about 40,000 registered body
meshes of 10 subjects in 14 motions (SMPL topology, 6890 vertices, metres). Register and
download "registrations_m.hdf5" and "registrations_f.hdf5" at https://dfaust.is.tue.mpg.de
and put them in DATA_ROOT.
The data is imported once into data/dfaust (deep3dmm data import dfaust DATA_ROOT).
USAGE
}
DATASET=dfaust
IMPORTER=dfaust
IMPORT_ARGS=()
source "$(dirname "${BASH_SOURCE[0]}")/train_published.sh"
