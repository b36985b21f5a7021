#!/usr/bin/env bash
# One call on a lent GPU machine: train the five shipped models, install their weights, recompute
# the results files of chapters 5 and 7 on the GPU, and pack what changed into one archive.
#
#     NNIMAGING_DATA=.data TRAIN_MINUTES=24 bash benchmarks/gpu_session.sh OUTDIR
#
# TRAIN_MINUTES is passed to gpu_training.sh (the five runs' training time together); the rest of
# the call (loading data and compiling for each model, the experiments) adds a few minutes. Size
# it to the lease. OUTDIR receives:
#   session.log          everything printed, with the runs' summaries and the time to 29.20 dB
#   gpu_utilization.csv  nvidia-smi samples, one a second (the GPU's share of the time)
#   gpu_session.tar.gz   src/nnimaging/weights, src/nnimaging/results and the runs' logs
# LIMIT=N evaluates only N images per test set: with DEVICE=cpu EXTRA="--width 8 --log-every 5"
# TRAIN_MINUTES=1, a one-minute dry run on a CPU (in a scratch copy: it replaces the weights).
# Back on the book's machine: tar xzf gpu_session.tar.gz (from the repository root), check
# `git diff --stat`, then re-execute chapters 5 and 7 (python -m nnimaging execute ...).
set -euo pipefail
OUTDIR=${1:?usage: bash benchmarks/gpu_session.sh OUTDIR}
RUNS=${RUNS:-runs}
case "$RUNS" in /*) echo "RUNS must be a path inside the repository, relative to its root: $RUNS" >&2; exit 2 ;; esac
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
export PYTHON=${PYTHON:-python3}  # a GPU image may have no plain "python"
# the package from this checkout, installed or not (a GPU image has torch, numpy, pillow, tqdm)
$PYTHON -c "import nnimaging" 2> /dev/null || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec > >(tee "$OUTDIR/session.log") 2>&1

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUTDIR/gpu_utilization.csv" &
  SAMPLER=$!
  trap 'kill $SAMPLER 2> /dev/null || true' EXIT
fi
$PYTHON -c "from nnimaging.experiments import environment; print(environment('$DEVICE'))"
start=$(date +%s)
bash benchmarks/gpu_training.sh "$RUNS"
echo "training took $(( $(date +%s) - start )) s"

$PYTHON - "$RUNS" <<'PY'
import sys
from nnimaging import weightstore
for name in weightstore.RECIPES:  # the runs gpu_training.sh made, one per shipped model
    weightstore.install_weights(f"{sys.argv[1]}/{name}")
print(weightstore.available())
PY
# the shipped results change only on full runs; a dry run (LIMIT) writes runs/results/
if [ -n "${LIMIT:-}" ]; then WHERE=(--limit "$LIMIT"); else WHERE=(--update-shipped); fi
for e in denoise-table sigma-sweep deblur-table; do
  $PYTHON -m nnimaging.experiments $e --device "$DEVICE" --no-progress "${WHERE[@]}"
done
$PYTHON - <<'PY'
from nnimaging import denoising, restoration, results
print(denoising.denoising_table(results.load("denoising")))
print(restoration.deblur_table(results.load("deblurring")))
PY
echo "whole session took $(( $(date +%s) - start )) s"
if [ -n "${SAMPLER:-}" ]; then  # nvidia-smi's "utilization.gpu": share of time a kernel was running
  awk -F', ' 'NR > 1 { sub(/ %/, "", $2); s += $2; n++ } END { if (n) printf "GPU busy %.0f%% of the session (%d samples)\n", s / n, n }' "$OUTDIR/gpu_utilization.csv"
fi
tar czf "$OUTDIR/gpu_session.tar.gz" src/nnimaging/weights src/nnimaging/results "$RUNS"/*/log.jsonl "$RUNS"/*/manifest_entry.json
