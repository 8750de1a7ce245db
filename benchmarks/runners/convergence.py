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

import numpy as np

from benchmarks.runners.args import clash, data_source, name_list, out_folder
from benchmarks.report.stats import mean_ci
from experiment.atomic import atomic_write_text
from experiment.cli import OneLineParser, epochs_count, positive_int, seed_list
from experiment.errors import exit_on_user_error
from experiment.frameworks import FRAMEWORKS
from experiment.history import column, load_history
from experiment.variants import MODELS

THRESHOLDS = (0.45, 0.50, 0.55)
TRAIN_LOSS_AT = (10, 50, 100)


def seed_dir(out, fw, model, seed):
    return os.path.join(out, fw, model, f"seed_{seed}")


def histories_of(out, conv, frameworks):
    """Per framework and model, the histories of the seeds a convergence run (its convergence.json
    `conv`) has for it."""
    return {fw: {m: [load_history(os.path.join(seed_dir(out, fw, m, s), "history.json"))
                     for s in conv[fw].get("seeds", conv["seeds"])] for m in MODELS} for fw in frameworks}


def history_done(out, fw, model, seed, epochs):
    try:
        return len(load_history(os.path.join(seed_dir(out, fw, model, seed), "history.json"))["epochs"]) >= epochs
    except (OSError, ValueError, KeyError, RecursionError):
        return False


EVALUATION_FILES = ("evaluation.json", "confusion_matrix.png")


def evaluation_of(folder, ckpt_ext):
    """A seed's test evaluation, or None where there is none or it is older than the checkpoint it
    should be of (a retrained seed's old evaluation is never reported as the new one's)."""
    path, ckpt = os.path.join(folder, "evaluation.json"), os.path.join(folder, "best" + ckpt_ext)
    try:
        if os.path.exists(ckpt) and os.stat(path).st_mtime_ns < os.stat(ckpt).st_mtime_ns:
            return None
    except OSError:
        return None
    return json_or(path, None)


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
        else:  # trained afresh: the evaluations of what it replaces go
            for m in MODELS:
                for s in group:
                    for name in EVALUATION_FILES:
                        path = os.path.join(seed_dir(args.out, fw, m, s), name)
                        if os.path.exists(path):
                            os.remove(path)
            cmd = ["--model", "both", "--seeds", ",".join(map(str, group)), "--epochs", str(args.epochs),
                   "--batch-size", str(args.batch_size), "--out", out, "--overwrite",
                   *(["--data", args.data] if args.data else []), *args.extra.get(fw, [])]
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", f.train, *cmd, "--no-progress"], check=True)
        walls[",".join(map(str, group))] = round(time.perf_counter() - t0, 2)  # the whole command, as a user waits
    ckpts = [os.path.join(seed_dir(args.out, fw, m, s), "best" + f.ckpt_ext) for m in MODELS for s in args.seeds]
    ckpts = [c for c in ckpts if os.path.exists(c) and evaluation_of(os.path.dirname(c), f.ckpt_ext) is None]
    if ckpts:  # one process for all: the data is read once
        ev = [sys.executable, "-m", f.evaluate, *(a for c in ckpts for a in ("--ckpt", c)),
              *(["--data", args.data] if args.data else []), *device_of(args.extra.get(fw, []))]
        subprocess.run(ev, check=True, stdout=subprocess.DEVNULL)
    return walls


def device_of(flags):
    """The --device among a framework's extra flags (evaluate on the device trained on)."""
    i = flags.index("--device") if "--device" in flags else None
    return flags[i:i + 2] if i is not None else []


def first_epoch_reaching(h, threshold):
    hits = np.nonzero(column(h, "val_acc") >= threshold)[0]
    return int(column(h, "epoch")[hits[0]]) if len(hits) else None


def seed_metrics(h, evaluation):
    """One seed's numbers; test_acc is None until its best checkpoint is evaluated, a train loss at an
    epoch the run did not reach is None (never the value of an earlier epoch)."""
    acc, vloss, tloss = column(h, "val_acc"), column(h, "val_loss"), column(h, "train_loss")
    peak = int(np.argmax(acc))
    return {
        "best_val_acc": float(acc[peak]), "best_val_acc_epoch": peak + 1,
        "best_val_loss": float(vloss.min()), "best_val_loss_epoch": int(np.argmin(vloss)) + 1,
        "last_val_acc": float(acc[-1]), "last_val_loss": float(vloss[-1]),
        "last_gap": float(vloss[-1] - tloss[-1]),
        **{f"epochs_to_{int(100 * t)}": first_epoch_reaching(h, t) for t in THRESHOLDS},
        **{f"train_loss_at_{e}": float(tloss[e - 1]) if e <= len(tloss) else None for e in TRAIN_LOSS_AT},
        "test_acc": evaluation["test_acc"] if evaluation else None,
    }


def json_or(path, default):
    """A JSON file's content, or `default` where it is missing or unreadable (not evaluated yet,
    a first run)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError):
        return default


def summarize(out, frameworks, seeds, planned, stopped=None):
    """Per framework, over the seeds whose both models have at least one epoch (a run cut short by
    a time limit counts with the epochs it finished, and says it planned `planned` and why it
    stopped)."""
    result = {}
    for fw in frameworks:
        have = [s for s in seeds if all(history_done(out, fw, m, s, 1) for m in MODELS)]
        if not have:
            continue
        hs = {m: [load_history(os.path.join(seed_dir(out, fw, m, s), "history.json")) for s in have] for m in MODELS}
        ext = FRAMEWORKS[fw].ckpt_ext
        evaluation = {m: [evaluation_of(seed_dir(out, fw, m, s), ext) for s in have] for m in MODELS}
        per_seed = {m: [seed_metrics(h, e) for h, e in zip(hs[m], evaluation[m])] for m in MODELS}
        summary = {m: {k: mean_ci([p[k] for p in per_seed[m]]) for k in per_seed[m][0]} for m in MODELS}
        slowdown = {}
        for t in THRESHOLDS:
            k = f"epochs_to_{int(100 * t)}"
            b, d = summary["baseline"][k]["mean"], summary["dropout"][k]["mean"]
            slowdown[k] = d / b if b and d else None
        result[fw] = {"seeds": have, "per_seed": per_seed, "summary": summary,
                      "slowdown_dropout_over_baseline": slowdown,
                      "epochs": min(len(h["epochs"]) for m in MODELS for h in hs[m]), "planned_epochs": planned}
        result[fw]["stopped"] = stopped if result[fw]["epochs"] < planned else None
    return result


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
              **summarize(args.out, frameworks, args.seeds, args.epochs, stopped)}
    result["train_wall_s"] = {**previous.get("train_wall_s", {}), **walls}
    os.makedirs(args.out, exist_ok=True)  # a training command refused at once creates nothing, OUT neither
    atomic_write_text(os.path.join(args.out, "convergence.json"), json.dumps(result, indent=1) + "\n")
    print(f"[convergence] wrote {os.path.join(args.out, 'convergence.json')}")
    if failed:  # a summary of what finished is written, but the run did not do what it was asked
        p.exit(1, f"{p.prog}: error: {failed}; convergence.json summarises the epochs that finished\n")


if __name__ == "__main__":
    main()
