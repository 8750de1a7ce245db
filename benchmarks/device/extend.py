"""python -m benchmarks.device.extend: a finished training run continued to more epochs, as a copy, so the
shorter run keeps what its report needs (its best-val-loss checkpoint and its test evaluation).

  python -m benchmarks.device.extend --source convergence/flax --out convergence-300 --seeds 0,1 --epochs 300 \\
      --data DATA --device gpu

Copies SOURCE (a convergence run's framework folder: run.json, train state, lanes; timestamps kept, so a
checkpoint's evaluation stays its own) to OUT/flax unless that copy exists (a later lease continues it),
resumes it to --epochs (`flax_impl.train --resume`, bit-exact), then lets benchmarks.runners.convergence
evaluate the best checkpoints that changed and write OUT/convergence.json. The device run's long-flax step."""
import argparse
import os
import shutil
import signal
import subprocess
import sys

from experiment.lock import HOLDER_FILE


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.device.extend", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", required=True)
    p.add_argument("--epochs", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--device", default="gpu")
    a = p.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # the training command (same process group)
        signal.signal(signum, lambda *_: None)  # got it too: wait while it saves its last epoch, then exit
    copy = os.path.join(a.out, "flax")
    if not os.path.isfile(os.path.join(copy, "run.json")):
        if not os.path.isfile(os.path.join(a.source, "run.json")):
            p.error(f"--source {a.source}: no run.json there (the run to continue has not come back)")
        shutil.rmtree(copy, ignore_errors=True)  # a copy cut short before its run.json: made again
        shutil.copytree(a.source, copy, ignore=shutil.ignore_patterns(HOLDER_FILE, "*.tmp", ".tmp-*"))
        print(f"[extend] copied {a.source} to {copy}", flush=True)
    subprocess.run([sys.executable, "-m", "flax_impl.train", "--resume", copy, "--epochs", a.epochs, "--data", a.data,
                    "--device", a.device, "--no-progress"], check=True)
    # every lane has its epochs now: the runner reuses them, evaluates the best checkpoints that changed
    subprocess.run([sys.executable, "-m", "benchmarks.runners.convergence", "--frameworks", "flax", "--seeds", a.seeds,
                    "--epochs", a.epochs, "--data", a.data, "--out", a.out, "--flax-args", f"--device {a.device}"],
                   check=True)


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit(f"benchmarks.device.extend: error: {e.cmd[2]} failed with exit {e.returncode}")
