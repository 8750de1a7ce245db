#!/usr/bin/env bash
# The one prepared accelerator run: benchmarks/device/run.py does the work (its docstring says how).
#
#   CIFAR10=data/cifar10-jpeg.tar.gz bash benchmarks/device_run.sh OUT             # one lease of a GPU
#   CIFAR10=... bash benchmarks/device_run.sh OUT2 --continue OUT/results.tar.gz   # the next lease
#   bash benchmarks/device_run.sh OUT --plan                                       # what each lease runs
#   bash benchmarks/device_run.sh OUT --tiny                                       # the same steps on a CPU
#
# The data travels with the repository in data/ (ignored by git), e.g. a copy of the JPEG tar.
# Needs only what a GPU machine of this project has installed (jax, flax, optax, torch, scipy,
# matplotlib, pytest, numpy, pillow, tqdm); runs from the repository root without installing it.
# OUT and PREV are read from the folder the command is typed in (no cd: a relative path is the caller's).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m benchmarks.device.run "$@"
