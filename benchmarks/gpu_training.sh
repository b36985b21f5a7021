#!/usr/bin/env bash
# Train the shipped models on one GPU, measure DnCNN's time to 29.20 dB on BSD68.
# Run from the repository root with the datasets available (NNIMAGING_DATA=... or a download cache):
#
#     TRAIN_MINUTES=24 bash benchmarks/gpu_training.sh [RUNS_DIR]
#
# TRAIN_MINUTES (default 24) is the training time of all five models together, shared 30/30/24/8/8
# per cent; each run fits its learning-rate schedule into its share (--minutes). Loading data,
# compiling and validating come on top (about half a minute per model on an H100).
# TRAIN_MINUTES=0 drops the budgets: the paper's 80,000 steps per model. EXTRA (default
# --compile) is added to every command; EXTRA= on a CPU, where compiling does not pay.
#
# Each step resumes where an interrupted run stopped (run the script again). The runs write
# RUNS_DIR/<name>/{checkpoint.pt,log.jsonl,<name>.pt,manifest_entry.json}; install the weights
# with  python -c "from nnimaging import weightstore; weightstore.install_weights('RUNS_DIR/<name>')"
# and then rerun the experiments and re-execute chapters 5 and 7 (benchmarks/gpu_session.sh does
# all of it in one go).
set -euo pipefail
RUNS=${1:-runs}
TRAIN_MINUTES=${TRAIN_MINUTES:-24}
EXTRA=${EXTRA---compile}
PYTHON=${PYTHON:-python3}  # a GPU image may have no plain "python"
T="$PYTHON -m nnimaging.train"
COMMON="--no-progress --resume --log-every 100 --ckpt-every 1000 $EXTRA"

budget() {  # budget PERCENT -> "--minutes M" (nothing when TRAIN_MINUTES=0)
  $PYTHON -c "import sys; m = float(sys.argv[1]) * float(sys.argv[2]) / 100; print(f'--minutes {m:.2f}' if m > 0 else '')" "$TRAIN_MINUTES" "$1"
}
# DnCNN-S, sigma 25: validate on all of BSD68 so that the time to 29.20 dB is the paper's measure
$T dncnn --sigma 25 --batch-size 128 $(budget 30) --val bsd68 --val-count 68 --val-every 500 $COMMON --out "$RUNS/dncnn-s25"
$T dncnn --depth 20 --sigma-range 0 55 --batch-size 128 $(budget 30) --val bsd68 --val-count 68 --val-every 1000 $COMMON --out "$RUNS/dncnn-b"
$T unet --sigma-range 0 55 --patch-size 64 --batch-size 64 $(budget 24) --val bsd68 --val-count 68 --val-every 1000 $COMMON --out "$RUNS/unet-denoise"
$T unet --width 16 --blur motion:9:30 --sigma-range 1 6 --patch-size 64 --batch-size 64 $(budget 8) --val set12 --val-count 12 --val-every 1000 $COMMON --out "$RUNS/unet-deblur"
$T unet --width 16 --blur motion:9:30 --wiener-nsr 0.01 --sigma-range 1 6 --patch-size 64 --batch-size 64 $(budget 8) --val set12 --val-count 12 --val-every 1000 $COMMON --out "$RUNS/unet-wiener"
$PYTHON - "$RUNS" <<'PY'
import json, sys
from nnimaging.runreport import run_summary, time_to_target
from nnimaging.models import RECIPES
runs = sys.argv[1]
for name in RECIPES:  # the shipped models, trained above into runs named after them
    print(f"{name}:", json.dumps(run_summary(f"{runs}/{name}")))
print("dncnn-s25 time to 29.20 dB on BSD68:", json.dumps(time_to_target(f"{runs}/dncnn-s25", 29.20)))
PY
