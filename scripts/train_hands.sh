#!/usr/bin/env bash
# Train COMA, Neural3DMM and their Deep3DMM attention variants on registered hand meshes.
#   usage: scripts/train_hands.sh DATA_ROOT
#   env:   UNIT (coordinate unit of the meshes: m, cm or mm; default mm),
#          EPOCHS (default 300), PREPARED (default data/hands), RUNS (default runs/hands),
#          TRAIN_ARGS (extra `deep3dmm train` options, e.g. "--device cuda")
# See docs/training.md for the configurations and expected run times.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
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
  exit 2
fi
DATA_ROOT="$(cd "$1" && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
export MPLBACKEND=Agg
PREPARED="${PREPARED:-data/hands}"
RUNS="${RUNS:-runs/hands}"
if [ ! -f "$PREPARED/meta.json" ]; then
  deep3dmm data import folder "$DATA_ROOT" --unit "${UNIT:-mm}" --out "$PREPARED"
fi
source scripts/train_published.sh
