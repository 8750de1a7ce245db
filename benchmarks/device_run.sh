#!/usr/bin/env bash
# The one prepared accelerator run: speed, convergence (100 and 300 epochs), parity in GPU mode,
# then REPORT.md, all written under one folder. Needs only jax, flax, optax, torch, matplotlib,
# pytest and scipy, and CIFAR10 pointing at a copy of the data.
#
#   CIFAR10=data/cifar10-jpeg.tar.gz bash benchmarks/device_run.sh benchmarks/results/gpu-h100
#   bash benchmarks/device_run.sh /tmp/tiny --tiny      # the same steps on CPU in about two minutes
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: device_run.sh OUT [--tiny]}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ "${2:-}" = "--tiny" ]; then
  DEV=cpu; DATA=synthetic:600; SEEDS=0,1; TORCH_SEEDS=0; E100=2; E300=3; IMAGES=512; BATCHES=64
  PARITY=(-k "structure or logits")
else
  DEV=gpu; DATA=${CIFAR10:?set CIFAR10}; SEEDS=0,1,2,3,4; TORCH_SEEDS=0; E100=100; E300=300
  IMAGES=40960; BATCHES=64,128,256; PARITY=()
fi
TORCH_DEV=$([ "$DEV" = gpu ] && echo cuda || echo cpu)
log() { echo "[device_run $(date +%T)] $*"; }

log "speed"
python -m benchmarks.speed --device "$DEV" --batches "$BATCHES" --images "$IMAGES" --rounds 1 \
  --variants torch-eager,flax-scan-matmul,flax-scan-xla,flax-scan-matmul-vmap8 --out "$OUT/speed" | tee "$OUT/speed.log"

# Flax trains every seed in one vmapped program; PyTorch eager, one model at a time, gets one seed
# (five would not fit the time box) and is reported beside it.
log "convergence, $E100 epochs"
python -m benchmarks.convergence --frameworks flax --seeds "$SEEDS" --epochs "$E100" --data "$DATA" \
  --out "$OUT/convergence" --flax-args "--device $DEV" | tee "$OUT/convergence.log"
python -m benchmarks.convergence --frameworks torch --seeds "$TORCH_SEEDS" --epochs "$E100" --data "$DATA" \
  --out "$OUT/convergence-torch" --torch-args "--device $TORCH_DEV" | tee -a "$OUT/convergence.log"
log "convergence, $E300 epochs (flax)"
python -m benchmarks.convergence --frameworks flax --seeds "$SEEDS" --epochs "$E300" --data "$DATA" \
  --out "$OUT/convergence-300" --flax-args "--device $DEV" | tee -a "$OUT/convergence.log"

log "parity suite, $DEV mode"
python -m pytest parity_tests -q --device "$DEV" "${PARITY[@]}" 2>&1 | tee "$OUT/parity.log" || true

log "report"
python -m benchmarks.report --convergence "$OUT/convergence" --speed "$OUT/speed" --out "$OUT" --title "$DEV, $E100 epochs"
python -m benchmarks.report --convergence "$OUT/convergence-300" --out "$OUT/report-300" --title "$DEV, $E300 epochs"
log "done: $OUT"
