"""python -m benchmarks.runners.convergence: the tutorial's protocol over several seeds, in each framework.

Trains both models for every seed in each framework (`<fw>.train --model both --seeds`), evaluates
every seed's best-validation-loss checkpoint on the test set, and writes OUT/convergence.json with
per-seed metrics and their mean ± 95% CI. Resumable: a seed whose histories already have all their
epochs is reused (and evaluated if it was not); the group of seeds that was training when the run
was killed continues from its last finished epoch (`--resume`); the others are trained from the start.

  python -m benchmarks.runners.convergence --seeds 0,1,2 --epochs 100 --data $CIFAR10 --out benchmarks/results/cpu/convergence
"""
import json
import os
import signal
import subprocess
import sys
import time

from benchmarks.folders import evaluation_of, history_done, json_or, seed_dir
from benchmarks.report.summaries import convergence_summary
from benchmarks.runners.args import clash, clear_for_training, data_source, name_list, out_folder
from experiment.atomic import atomic_write_text
from experiment.cli import OneLineParser, epochs_count, positive_int, seed_list
from experiment.errors import exit_on_user_error
from experiment.frameworks import FRAMEWORKS
from experiment.history import load_history
from experiment.variants import MODELS

CHILD_SAVE_S = 10  # a stopped training command drops the epoch in progress and flushes its writes within this


def settings_clash(args, frameworks):
    """The first finished seed whose recorded batch size or data differ from this run's (reusing it
    would label it with settings it was not trained with), as a sentence; None if there is none."""
    for fw in frameworks:
        for m in MODELS:
            for s in args.seeds:
                if history_done(args.out, fw, m, s, args.epochs):
                    folder = seed_dir(args.out, fw, m, s)
                    why = clash(load_history(os.path.join(folder, "history.json")), args.batch_size, args.data)
                    if why:
                        return f"{folder} {why}: use another --out, or remove the seeds to retrain them"
    return None


def killed_during(out, group, args):
    """Whether the last training run in `out` was this group's, stopped after some epochs."""
    try:
        with open(os.path.join(out, "run.json")) as f:
            run = json.load(f)["args"]
    except (OSError, ValueError, KeyError, RecursionError):
        return False
    same = (run.get("model"), run.get("seeds"), run.get("epochs"), run.get("batch_size")) == \
        ("both", group, args.epochs, args.batch_size)
    states = [os.path.join(root, f) for root, _, files in os.walk(out) for f in files if f.startswith("train_state")]
    return same and bool(states)


def run_framework(fw, args):
    """Both models of every unfinished seed (Flax: one program of lanes), then the test evaluation of
    every best checkpoint that has none."""
    f = FRAMEWORKS[fw]
    out = os.path.join(args.out, fw)
    todo = [s for s in args.seeds if not all(history_done(args.out, fw, m, s, args.epochs) for m in MODELS)]
    print(f"[convergence] {fw}: " + (f"training seeds {todo}" if todo else "all seeds trained, reusing"), flush=True)
    # All seeds in one run, or one run per seed where that is faster (on a 2-core CPU XLA's batched
    # matmuls lose to one lane at a time).
    walls = {}
    for group in ([[s] for s in todo] if args.one_seed_at_a_time else [todo] if todo else []):
        if killed_during(out, group, args):  # continue from its last finished epoch
            cmd = ["--resume", out]
        else:  # trained afresh beside the finished seeds, which the run.json of the run before described
            clear_for_training(out, [seed_dir(args.out, fw, m, s) for m in MODELS for s in group])
            cmd = ["--model", "both", "--seeds", ",".join(map(str, group)), "--epochs", str(args.epochs),
                   "--batch-size", str(args.batch_size), "--out", out,
                   *(["--data", args.data] if args.data else []), *args.extra.get(fw, [])]
        t0 = time.perf_counter()
        run_training([sys.executable, "-m", f.train, *cmd, "--no-progress"])
        walls[",".join(map(str, group))] = round(time.perf_counter() - t0, 2)  # the whole command, as a user waits
    ckpts = [os.path.join(seed_dir(args.out, fw, m, s), "best" + f.ckpt_ext) for m in MODELS for s in args.seeds]
    ckpts = [c for c in ckpts if os.path.exists(c) and evaluation_of(os.path.dirname(c), f.ckpt_ext) is None]
    if ckpts:  # one process for all: the data is read once
        ev = [sys.executable, "-m", f.evaluate, *(a for c in ckpts for a in ("--ckpt", c)),
              *(["--data", args.data] if args.data else []), *device_of(args.extra.get(fw, []))]
        subprocess.run(ev, check=True, stdout=subprocess.DEVNULL)
    return walls


def run_training(cmd):
    """A training command, waited for; stopped by a signal, this runner lets it save its last epoch first
    (it got the signal too where both are one process group: a terminal's Ctrl-C, the device run's stop)."""
    proc = subprocess.Popen(cmd)
    try:
        rc = proc.wait()
    except Stopped:
        try:
            proc.wait(timeout=CHILD_SAVE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)


def device_of(flags):
    """The --device among a framework's extra flags (evaluate on the device trained on)."""
    i = flags.index("--device") if "--device" in flags else None
    return flags[i:i + 2] if i is not None else []


class Stopped(Exception):
    pass


def stop_reason(e):
    """What stopped the runner, as the report's header says it."""
    if isinstance(e, Stopped):
        return f"{e}: a time cap or a kill" if str(e) == "SIGTERM" else str(e)
    return f"{e.cmd[2]} failed with exit {e.returncode}"  # cmd: python -m <module> ...


def stop_waiting(signum, frame):
    raise Stopped(signal.Signals(signum).name)


@exit_on_user_error("benchmarks.runners.convergence")
def main(argv=None):
    p = OneLineParser(prog="benchmarks.runners.convergence", description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", type=name_list(list(FRAMEWORKS)), default=["flax", "torch"])
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=epochs_count, default=100)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--one-seed-at-a-time", action="store_true", help="one training run per seed")
    p.add_argument("--flax-args", default="", help="extra flags for flax_impl.train, e.g. '--device gpu'")
    p.add_argument("--torch-args", default="", help="extra flags for torch_ref.train, e.g. '--device cuda'")
    args = p.parse_args(argv)
    args.extra = {"flax": args.flax_args.split(), "torch": args.torch_args.split()}
    frameworks = args.frameworks
    out_folder(p, args.out)
    data_source(p, args.data)
    why = settings_clash(args, frameworks)
    if why:
        p.error(why)
    walls, stopped, failed = {}, None, None
    try:
        signal.signal(signal.SIGTERM, stop_waiting)  # a time limit: summarise what finished
        for fw in frameworks:
            walls[fw] = run_framework(fw, args)
    except (subprocess.CalledProcessError, Stopped) as e:
        print(f"[convergence] stopped ({e}); summarising the epochs that finished", flush=True)
        stopped = stop_reason(e)
        failed = stopped if isinstance(e, subprocess.CalledProcessError) else None
    previous = json_or(os.path.join(args.out, "convergence.json"), {})  # another framework's summary stays
    result = {**previous, "command": "python -m benchmarks.runners.convergence " + " ".join(argv if argv is not None else
                                                                                    sys.argv[1:]),
              "seeds": args.seeds, "batch_size": args.batch_size,
              **convergence_summary(args.out, frameworks, args.seeds, args.epochs, stopped)}
    result["train_wall_s"] = {**previous.get("train_wall_s", {}), **walls}
    os.makedirs(args.out, exist_ok=True)  # a training command refused at once creates nothing, OUT neither
    atomic_write_text(os.path.join(args.out, "convergence.json"), json.dumps(result, indent=1) + "\n")
    print(f"[convergence] wrote {os.path.join(args.out, 'convergence.json')}")
    if failed:  # a summary of what finished is written, but the run did not do what it was asked
        p.exit(1, f"{p.prog}: error: {failed}; convergence.json summarises the epochs that finished\n")


if __name__ == "__main__":
    main()
