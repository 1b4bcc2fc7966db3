#!/usr/bin/env bash
# Train COMA, Neural3DMM and their Deep3DMM attention variants, and fit the PCA baseline,
# on registered hand meshes.
#   usage: scripts/train_hands.sh DATA_ROOT
#   env:   UNIT (coordinate unit of the meshes: m, cm or mm; default mm),
#          EPOCHS (default 300), PREPARED (default data/hands), RUNS (default runs/hands),
#          TRAIN_ARGS (extra `deep3dmm train` options, e.g. "--device cuda"),
#          DEEP3DMM_SKIP_SETUP=1 (use the current Python environment instead of .venv)
# See docs/training.md for the configurations and expected run times.
set -euo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: scripts/train_hands.sh DATA_ROOT

Needs registered hand meshes that share one topology, e.g. the hand meshes of SynHand5M
(Malik et al., 3DV 2018; 5 million synthetic depth images with hand mesh annotations:
request it from the authors via the DFKI Augmented Vision page), exported as one mesh
file (.ply/.obj/.off) per frame under DATA_ROOT/<subject>/<sequence>/. Set UNIT to the
unit of the coordinates (default mm).
The data is imported once into data/hands (deep3dmm data import folder DATA_ROOT).
Without real data, `deep3dmm data make hands` generates a synthetic stand-in.
USAGE
}
DATASET=hands
IMPORTER=folder
IMPORT_ARGS=(--unit "${UNIT:-mm}")
source "$(dirname "${BASH_SOURCE[0]}")/train_published.sh"
