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
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m benchmarks.device.run "$@"
