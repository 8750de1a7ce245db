#!/usr/bin/env bash
# The one prepared accelerator run. Each step has its own time cap inside an overall budget and
# leaves its results as soon as it ends, so a run cut short still brings back every finished step.
# Everything lands in at most 8 files, no deeper than OUT/: REPORT.md, device_run.log, results.tar.gz
# (every step's files), and copies of the tables a reader wants first (speed.md, lanes.md, parity.log).
#
#   CIFAR10=data/cifar10-jpeg.tar.gz bash benchmarks/device_run.sh OUT            # a GPU, about 9 minutes
#   bash benchmarks/device_run.sh OUT --tiny                                      # the same steps on a CPU
#
# The data travels with the repository in data/ (ignored by git), e.g. a copy of the JPEG tar.
#
# Needs only what a GPU machine of this project has installed (jax, flax, optax, torch, scipy,
# matplotlib, pytest, numpy, pillow, tqdm); runs from the repository root without installing it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: device_run.sh OUT [--tiny]}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
PY=${PYTHON:-python}  # the interpreter with the packages (the tests pass their own)
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ "${2:-}" = "--tiny" ]; then
  DEV=cpu; DATA=synthetic:600; SEEDS=0,1; EPOCHS=2; LONG=3; BUDGET=${BUDGET:-600}; IMAGES=256
  SPEED_BATCHES=32; LANES=1,2; SWEEP="--batches 32,64 --rates 0,0.5 --seeds 0,1 --epochs 2"
  PARITY=(-m "not slow" -k "structure or logits or precision"); export LENET_COMPILE_CACHE="$WORK/jax-cache"
  SPEED_VARIANTS=torch-fast,torch-vmap2,flax-scan-matmul-vmap2,flax-scan-matmul-tf32
else
  DEV=gpu; DATA=${CIFAR10:?set CIFAR10 to the data}; SEEDS=0,1,2,3,4,5,6,7; EPOCHS=100; LONG=300; BUDGET=${BUDGET:-540}
  IMAGES=20480; SPEED_BATCHES=64,256; LANES=1,2,4,8,16,32,64,128,256,512
  SWEEP="--batches 32,64,128,256,512 --rates 0,0.1,0.25,0.5,0.7 --seeds $SEEDS --epochs 100"
  PARITY=()
  # every engine and variant at batch 64 and 256, lanes 1/8/16, both precisions (batch 64 only for tf32)
  SPEED_VARIANTS=torch-eager,torch-fast,torch-cudagraph,torch-compile-ro,torch-vmap8,torch-vmap16,flax-scan-matmul,\
flax-scan-xla,flax-scan-matmul-vmap8,flax-scan-matmul-vmap16,flax-scan-xla-vmap8,flax-scan-xla-vmap16
  SPEED_TF32=torch-fast-tf32,torch-cudagraph-tf32,torch-vmap16-tf32,flax-scan-xla-tf32,flax-scan-matmul-tf32,flax-scan-xla-vmap16-tf32
fi
START=$(date +%s)
log() { echo "[device_run $(date +%T) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/device_run.log"; }
# step NAME CAP_SECONDS COMMAND...: run with at most CAP seconds (less if the budget is nearly spent);
# SIGTERM first, so training saves its last epoch, then SIGKILL 15 s later.
step() {
  local name=$1 cap=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  [ "$cap" -gt "$left" ] && cap=$left
  if [ "$cap" -le 5 ]; then log "$name: skipped, the budget is spent"; return; fi
  log "$name: start (cap ${cap}s)"
  timeout -k 15 "$cap" "$@" >>"$WORK/$name.log" 2>&1
  local rc=$?
  log "$name: exit $rc$([ $rc = 124 ] && echo ' (time cap reached; what finished is kept)')"
  tar -czf "$OUT/results.tar.gz.tmp" -C "$WORK" --exclude='*.msgpack' --exclude='*.pt' --exclude=jax-cache . \
    && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz"
}
log "device $DEV, data $DATA, budget ${BUDGET}s; python $("$PY" -c 'import sys; print(sys.version.split()[0])')"
"$PY" - <<'EOF' >>"$OUT/device_run.log" 2>&1
import jax, torch
print("jax", jax.__version__, jax.devices(), "| torch", torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())
EOF

# Most important first: the parity suite, then the main job in both frameworks, then speed.
step parity 110 "$PY" -m pytest parity_tests -q -p no:cacheprovider --device "$DEV" "${PARITY[@]}"
cp "$WORK/parity.log" "$OUT/parity.log"

# The main job, timed as a user runs it: 8 seeds x 2 models x 100 epochs, then each best checkpoint tested.
step main-flax 60 "$PY" -m benchmarks.convergence --frameworks flax --seeds "$SEEDS" --epochs "$EPOCHS" --data "$DATA" \
  --out "$WORK/convergence" --flax-args "--device $DEV"
step main-torch 60 "$PY" -m benchmarks.convergence --frameworks torch --seeds "$SEEDS" --epochs "$EPOCHS" --data "$DATA" \
  --out "$WORK/convergence" --torch-args "--device $DEV --engine vmap"

step speed 110 "$PY" -m benchmarks.speed --device "$DEV" --models dropout --batches "$SPEED_BATCHES" --images "$IMAGES" \
  --repeats 2 --rounds 1 --timeout 45 --variants "$SPEED_VARIANTS" --out "$WORK/speed"
if [ -n "${SPEED_TF32:-}" ]; then
  step speed-tf32 30 "$PY" -m benchmarks.speed --device "$DEV" --models dropout --batches 64 --images "$IMAGES" \
    --repeats 2 --rounds 1 --timeout 30 --variants "$SPEED_TF32" --out "$WORK/speed-tf32"
fi
[ -f "$WORK/speed/speed.md" ] && cat "$WORK/speed/speed.md" "$WORK"/speed-tf32/speed.md > "$OUT/speed.md" 2>/dev/null

step lanes 50 "$PY" -m benchmarks.wall --skip-command --device "$DEV" --lanes "$LANES" --images 2048 --speed-repeats 2 \
  --out "$WORK/lanes"
[ -f "$WORK/lanes/wall.md" ] && cp "$WORK/lanes/wall.md" "$OUT/lanes.md"

step long-flax 80 "$PY" -m benchmarks.convergence --frameworks flax --seeds "$SEEDS" --epochs "$LONG" --data "$DATA" \
  --out "$WORK/convergence-$LONG" --flax-args "--device $DEV"
step sweep 60 "$PY" -m benchmarks.sweep $SWEEP --data "$DATA" --out "$WORK/sweep" --flax-args "--device $DEV"

REPORT_ARGS=(--convergence "$WORK/convergence" --out "$WORK" --title "$DEV, $(date +%F)")
[ -f "$WORK/speed/speed.json" ] && REPORT_ARGS+=(--speed "$WORK/speed")
[ -f "$WORK/sweep/sweep.json" ] && REPORT_ARGS+=(--sweep "$WORK/sweep")
[ -f "$WORK/lanes/wall.json" ] && REPORT_ARGS+=(--wall "$WORK/lanes")
BUDGET=$(( BUDGET + 30 )) step report 30 "$PY" -m benchmarks.report "${REPORT_ARGS[@]}"
[ -f "$WORK/REPORT.md" ] && cp "$WORK/REPORT.md" "$OUT/REPORT.md"
log "done in $(( $(date +%s) - START ))s; files: $(cd "$OUT" && ls | tr '\n' ' ')"
