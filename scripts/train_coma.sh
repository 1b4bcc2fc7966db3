#!/usr/bin/env bash
# Train COMA, Neural3DMM and their Deep3DMM attention variants, and fit the PCA baseline,
# on the COMA dataset.
#   usage: scripts/train_coma.sh DATA_ROOT
#   env:   EPOCHS (default 300), PREPARED (default data/coma), RUNS (default runs/coma),
#          TRAIN_ARGS (extra `deep3dmm train` options, e.g. "--device cuda"),
#          DEEP3DMM_SKIP_SETUP=1 (use the current Python environment instead of .venv)
# See docs/training.md for the configurations and expected run times.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: scripts/train_coma.sh DATA_ROOT

Needs the COMA dataset (Ranjan et al., ECCV 2018): about 20,000 registered face meshes
(12 subjects x 12 expression sequences, 5023 vertices, metres). Register and download the
"registered data" at https://coma.is.tue.mpg.de and unpack it so that DATA_ROOT holds
FaceTalk_<subject>/<expression>/<expression>.<frame>.ply.
The data is imported once into data/coma (deep3dmm data import coma DATA_ROOT).
USAGE
}
DATASET=coma
IMPORTER=coma
IMPORT_ARGS=()
source "$(dirname "${BASH_SOURCE[0]}")/train_published.sh"
