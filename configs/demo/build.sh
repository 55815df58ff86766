#!/usr/bin/env bash
# Rebuild the shipped demo: MSR Action3D data -> our trainer -> ONNX bundle -> INT8 + temperature -> demo recordings.
# Usage (from the repository root, with the venv of the README): bash configs/demo/build.sh [MSRAction3D folder]
set -euo pipefail
RAW=${1:-../shared/data/small/MSRAction3D}
OUT=runs/demo
PY=${PY:-.venv/bin/python}
STTR=${STTR:-.venv/bin/sttr}
$STTR gendata msr_action3d --root "$RAW" --out $OUT/data --window 32 --bones --protocols cs
$STTR train --config configs/demo/msr_action3d_demo.yaml --set data.root=$OUT/data/cs work_dir=$OUT/run
rm -rf $OUT/bundle
$STTR export $OUT/run/best.pt --out $OUT/bundle --data $OUT/data/cs/test_data.npy
# INT8 and temperature: calibrated on half of the test-subject clips, agreement reported on the other half.
$STTR calibrate $OUT/bundle --data $OUT/data/cs/test_data.npy --samples 136 --method percentile
cp realtime/demo/bundle/MODEL_CARD.md $OUT/bundle/ 2>/dev/null || true
rm -rf realtime/demo/bundle && cp -r $OUT/bundle realtime/demo/bundle
$PY -m sttr.training.datasets.demo_sequences --root "$RAW" --out realtime/demo/sequences
