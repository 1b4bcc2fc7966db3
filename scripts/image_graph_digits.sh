#!/usr/bin/env bash
# Digits (32x32) accuracy: the CNN-only baseline and keypoint-graph classifiers, 3 seeds each,
# then the summary table (mean +- std) and keypoint pictures. Usage:
#   scripts/image_graph_digits.sh [RUNS_DIR]   (default runs/image_graph)
set -euo pipefail
RUNS=${1:-runs/image_graph}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-"0 1 2"}
train() {  # name, options...
  local name=$1; shift
  for seed in $SEEDS; do
    if [ ! -f "$RUNS/$name/seed$seed/metrics.json" ]; then
      rm -rf "$RUNS/$name/seed$seed"
      deep3dmm image train classify --epochs "$EPOCHS" --seed "$seed" --quiet \
        --out "$RUNS/$name/seed$seed" "$@"
    fi
  done
}
train cnn --model cnn
train maxpool_gcn --keypoints maxpool --graph gcn
train topk_gcn --keypoints topk --graph gcn
train maxpool_gat --keypoints maxpool --graph gat
train maxpool_diffpool --keypoints maxpool --graph diffpool --layers 3
train regress_gcn --keypoints regress --graph gcn
deep3dmm image summary "$RUNS"/*/seed*
for name in maxpool_gcn topk_gcn regress_gcn; do
  python examples/image_graph/show_run.py "$RUNS/$name/seed0"
done
if [ ! -f "$RUNS/reconstruct_maxpool_gcn/metrics.json" ]; then
  rm -rf "$RUNS/reconstruct_maxpool_gcn"
  deep3dmm image train reconstruct --epochs "$EPOCHS" --keypoints maxpool --graph gcn \
    --quiet --out "$RUNS/reconstruct_maxpool_gcn"
fi
python examples/image_graph/show_run.py "$RUNS/reconstruct_maxpool_gcn"
