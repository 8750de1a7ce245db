"""python -m benchmarks.convergence: the tutorial's protocol over several seeds, in each framework.

Trains both models for every seed in each framework (`<fw>.train --seeds`), evaluates every seed's
best-validation-loss checkpoint on the test set, and writes OUT/convergence.json with per-seed
metrics and their mean ± 95% CI. Resumable: a seed whose history already has all its epochs (and
its test evaluation) is reused; the group of seeds that was training when the run was killed
continues from its last finished epoch (`--resume`); the others are trained from the start.

  python -m benchmarks.convergence --seeds 0,1,2 --epochs 100 --data $CIFAR10 --out benchmarks/results/cpu/convergence
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from scipy import stats

from experiment.atomic import atomic_write_text
from experiment.cli import MODELS, seed_list
from experiment.frameworks import FRAMEWORKS
from experiment.history import column, load_history

THRESHOLDS = (0.45, 0.50, 0.55)
TRAIN_LOSS_AT = (10, 50, 100)


def seed_dir(out, fw, model, seed):
    return os.path.join(out, fw, model, f"seed_{seed}")


def is_finished(out, fw, model, seed, epochs):
    d = seed_dir(out, fw, model, seed)
    try:
        done = len(load_history(os.path.join(d, "history.json"))["epochs"]) >= epochs
    except (OSError, ValueError):
        return False
    return done and os.path.exists(os.path.join(d, "evaluation.json"))


def killed_during(out, model, group, args, ext):
    """Whether the last training run in `out` was this group's, stopped after some epochs."""
    try:
        with open(os.path.join(out, "run.json")) as f:
            run = json.load(f)["args"]
    except (OSError, ValueError, KeyError):
        return False
    same = (run.get("model"), run.get("seeds"), run.get("epochs"), run.get("batch_size")) == \
        (model, group, args.epochs, args.batch_size)
    return same and os.path.exists(os.path.join(out, model, "train_state" + ext))


def run_framework(fw, args):
    f = FRAMEWORKS[fw]
    train, evaluate, ext = f.train, f.evaluate, f.ckpt_ext
    for model in args.models:
        todo = [s for s in args.seeds if not is_finished(args.out, fw, model, s, args.epochs)]
        if not todo:
            print(f"[convergence] {fw} {model}: all seeds done, reusing", flush=True)
            continue
        print(f"[convergence] {fw} {model}: training seeds {todo}", flush=True)
        # All seeds in one run (Flax: one vmapped program), or one run per seed where that is
        # faster (on a 2-core CPU XLA's batched matmuls lose to one seed at a time).
        for group in ([[s] for s in todo] if args.one_seed_at_a_time else [todo]):
            out = os.path.join(args.out, fw)
            if killed_during(out, model, group, args, ext):  # continue from its last finished epoch
                cmd = [sys.executable, "-m", train, "--resume", out, "--no-progress"]
            else:
                cmd = [sys.executable, "-m", train, "--model", model, "--seeds", ",".join(map(str, group)),
                       "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                       "--out", out, "--overwrite", "--no-progress"]
            if args.data:
                cmd += ["--data", args.data]
            subprocess.run(cmd + args.extra.get(fw, []), check=True)
        for s in todo:
            d = seed_dir(args.out, fw, model, s)
            ev = [sys.executable, "-m", evaluate, "--ckpt", os.path.join(d, "best" + ext)]
            subprocess.run(ev + (["--data", args.data] if args.data else []), check=True,
                           stdout=subprocess.DEVNULL)


def first_epoch_reaching(h, threshold):
    hits = np.nonzero(column(h, "val_acc") >= threshold)[0]
    return int(column(h, "epoch")[hits[0]]) if len(hits) else None


def seed_metrics(h, evaluation):
    acc, vloss, tloss = column(h, "val_acc"), column(h, "val_loss"), column(h, "train_loss")
    peak = int(np.argmax(acc))
    return {
        "best_val_acc": float(acc[peak]), "best_val_acc_epoch": peak + 1,
        "best_val_loss": float(vloss.min()), "best_val_loss_epoch": int(np.argmin(vloss)) + 1,
        "last_val_acc": float(acc[-1]), "last_val_loss": float(vloss[-1]),
        "last_gap": float(vloss[-1] - tloss[-1]),
        **{f"epochs_to_{int(100 * t)}": first_epoch_reaching(h, t) for t in THRESHOLDS},
        **{f"train_loss_at_{e}": float(tloss[min(e, len(tloss)) - 1]) for e in TRAIN_LOSS_AT},
        "test_acc": evaluation["test_acc"],
    }


def mean_ci(values):
    """Mean and half-width of the 95% t-interval; None entries (never reached) are left out."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(v.mean()), "ci95": half, "n": int(len(v))}


def crossing(base_hs, drop_hs):
    """First epoch after BaseLine's peak from which Dropout's val accuracy stays above BaseLine's:
    for the mean curves, and per seed pair (mean ± CI)."""
    def cross(b, d):
        above = d > b
        for e in range(int(np.argmax(b)), len(b)):
            if above[e:].all():
                return e + 1
        return None
    n = min(len(h["epochs"]) for h in base_hs + drop_hs)
    b = np.stack([column(h, "val_acc")[:n] for h in base_hs])
    d = np.stack([column(h, "val_acc")[:n] for h in drop_hs])
    pairs = [cross(bi, di) for bi, di in zip(b, d)]
    return {"mean_curves": cross(b.mean(0), d.mean(0)), "per_seed": pairs, "per_seed_mean": mean_ci(pairs)}


def summarize(out, frameworks, seeds):
    result = {}
    for fw in frameworks:
        hs = {m: [load_history(os.path.join(seed_dir(out, fw, m, s), "history.json")) for s in seeds] for m in MODELS}
        per_seed = {m: [seed_metrics(h, json.load(open(os.path.join(seed_dir(out, fw, m, s), "evaluation.json"))))
                        for h, s in zip(hs[m], seeds)] for m in MODELS}
        summary = {m: {k: mean_ci([p[k] for p in per_seed[m]]) for k in per_seed[m][0]} for m in MODELS}
        slowdown = {}
        for t in THRESHOLDS:
            k = f"epochs_to_{int(100 * t)}"
            b, d = summary["baseline"][k]["mean"], summary["dropout"][k]["mean"]
            slowdown[k] = d / b if b and d else None
        result[fw] = {"per_seed": per_seed, "summary": summary, "slowdown_dropout_over_baseline": slowdown,
                      "crossing": crossing(hs["baseline"], hs["dropout"]),
                      "epochs": min(len(h["epochs"]) for m in MODELS for h in hs[m])}
    return result


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.convergence", description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", default="flax,torch")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--one-seed-at-a-time", action="store_true", help="one training run per seed")
    p.add_argument("--flax-args", default="", help="extra flags for flax_impl.train, e.g. '--device gpu'")
    p.add_argument("--torch-args", default="", help="extra flags for torch_ref.train, e.g. '--device cuda'")
    args = p.parse_args(argv)
    args.models = list(MODELS)
    args.extra = {"flax": args.flax_args.split(), "torch": args.torch_args.split()}
    frameworks = args.frameworks.split(",")
    for fw in frameworks:
        run_framework(fw, args)
    result = {"command": "python -m benchmarks.convergence " + " ".join(argv if argv is not None else sys.argv[1:]),
              "seeds": args.seeds, "batch_size": args.batch_size, **summarize(args.out, frameworks, args.seeds)}
    atomic_write_text(os.path.join(args.out, "convergence.json"), json.dumps(result, indent=1) + "\n")
    print(f"[convergence] wrote {os.path.join(args.out, 'convergence.json')}")


if __name__ == "__main__":
    main()
