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

# Pictures of the run just trained (the newest run folder): reconstruction heat maps
# (input | reconstruction | error in mm) and a latent interpolation between two
# subjects at two expression peaks (dataset rows: subject, expression, frame order).
RUN=""
for d in $(ls -td runs/*/); do
  if [ -f "${d}checkpoints/best.pt" ]; then RUN="${d%/}"; break; fi
done
deep3dmm render "$RUN" --out "$RUN/render" --count 4 --view front,side
deep3dmm interpolate "$RUN" --from 5 --to 185 --steps 8 --out "$RUN/interpolation"
echo
echo "demo finished: run folder $RUN"
echo "  heat maps       $RUN/render/reconstructions.png, $RUN/render/mean_error_test.png"
echo "  interpolation   $RUN/interpolation/strip.png, $RUN/interpolation/interpolation.gif"
echo "  curves          $RUN/curves.png"
