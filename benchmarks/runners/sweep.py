"""python -m benchmarks.runners.sweep: batch sizes x dropout rates x seeds in Flax, one compiled program of
lanes per batch size, to find what the tutorial left unsaid: under which batch size its figure
(BaseLine peaking near epoch 50, Dropout ahead only at 200-300) would hold, and which dropout
rate serves this network best.

  python -m benchmarks.runners.sweep --batches 64,256 --rates 0,0.5 --seeds 0,1,2 --epochs 100 --data $CIFAR10 \\
      --out benchmarks/results/cpu/sweep

Resumable: a batch size whose lanes have all their epochs is reused, one killed part-way continues
from its last saved epoch (--resume). --reuse DIR takes a batch size's lanes of rates 0 and 0.5 from a
convergence run (benchmarks.runners.convergence: flax/<baseline|dropout>/seed_<s>) when it has every seed of
them at that batch size, data and length; the other rates are trained.
Writes OUT/sweep.json and the figures the report shows.
"""
import json
import os
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.folders import epochs_done, lane_file, seed_dir  # noqa: E402
from benchmarks.report.summaries import sweep_summary  # noqa: E402
from benchmarks.runners.args import clash, clear_for_training, data_key, data_source, int_list, out_folder  # noqa: E402
from experiment.atomic import atomic_write_text  # noqa: E402
from experiment.cli import OneLineParser, epochs_count, rate_list, seed_list  # noqa: E402
from experiment.errors import exit_on_user_error  # noqa: E402
from experiment.history import load_history  # noqa: E402
from experiment.lanes import folder_name  # noqa: E402
from experiment.plots import save_figure  # noqa: E402


def unusable(path, a, batch):
    """Why a finished lane's history cannot stand for this sweep's lane (None if it can): another
    number of epochs, batch size or data."""
    try:
        h = load_history(path)
    except (OSError, ValueError, RecursionError):
        return "is not readable"
    n = len(h.get("epochs", []))
    return f"has {n} epochs, not {a.epochs}" if n != a.epochs else clash(h, batch, a.data)


MAIN_RATES = (0.0, 0.5)  # a convergence run's lanes: BaseLine (rate 0) and Dropout (0.5)


def reusable(a, batch):
    """A convergence run's lanes (rates 0 and 0.5) this batch size can take, where it has every seed asked
    for at each of those rates: (the folder, the rates, {lane file: its source}), or (None, (), {})."""
    wanted = [r for r in a.rates if r in MAIN_RATES]
    for folder in a.reuse if wanted else []:
        try:
            conv = json.load(open(os.path.join(folder, "convergence.json")))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(conv, dict) or conv.get("batch_size") != batch:
            continue
        sources = {(r, s): os.path.join(seed_dir(folder, "flax", folder_name(r), s), "history.json")
                   for r in wanted for s in a.seeds}
        why = next((f"{p} {w}" for p in sources.values() for w in [unusable(p, a, batch)] if w), None)
        if why:
            print(f"[sweep] batch {batch}: not taking lanes from {folder}: {why}", flush=True)
        else:
            return folder, tuple(wanted), {lane_file(a.out, batch, r, s): src for (r, s), src in sources.items()}
    return None, (), {}


def take(copies):
    """Copy the lanes reusable() found (after the others trained: a training run owns its folder until then)."""
    for dst, src in copies.items():
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(src, dst)


def run_batch(a, batch):
    """Train every (rate, seed) of one batch size as one program, unless done or reusable (the rates a
    convergence run has are taken from it, the others trained)."""
    files = [lane_file(a.out, batch, r, s) for r in a.rates for s in a.seeds]
    if all(os.path.exists(f) for f in files) and not any(unusable(f, a, batch) for f in files):
        print(f"[sweep] batch {batch}: done, reusing", flush=True)
        try:  # where the lanes came from, as the sweep that made them said
            with open(os.path.join(a.out, "sweep.json")) as f:
                return json.load(f)["summary"][str(batch)]["lanes"] or "trained earlier"
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return "trained earlier"
    source, taken, copies = reusable(a, batch)
    rates = [r for r in a.rates if r not in taken]
    if not rates:
        take(copies)
        print(f"[sweep] batch {batch}: lanes taken from {source}", flush=True)
        return f"from {source}"
    out = os.path.join(a.out, f"batch_{batch}")
    try:
        run = json.load(open(os.path.join(out, "run.json")))["args"]
        # the killed run is this one only if it trains these lanes (a one-rate run keeps its train
        # state in its rate's folder)
        killed = (run.get("epochs"), run.get("batch_size"), sorted(run.get("dropout_rates") or []),
                  run.get("seeds")) == (a.epochs, batch, sorted(rates), a.seeds) \
            and data_key(run.get("data")) == data_key(a.data) \
            and any(f.startswith("train_state") for _, _, fs in os.walk(out) for f in fs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        killed = False
    if killed:
        cmd = ["--resume", out]
    else:  # trained afresh beside lanes of other rates or seeds, which stay
        clear_for_training(out, [os.path.dirname(lane_file(a.out, batch, r, s)) for r in rates for s in a.seeds])
        cmd = ["--dropout-rates", ",".join(f"{r:g}" for r in rates), "--seeds", ",".join(map(str, a.seeds)),
               "--epochs", str(a.epochs), "--batch-size", str(batch), "--out", out,
               *(["--data", a.data] if a.data else []), *a.flax_args.split()]
    print(f"[sweep] batch {batch}: training {len(rates) * len(a.seeds)} lanes"
          + (f", rates {', '.join(f'{r:g}' for r in taken)} taken from {source}" if taken else ""), flush=True)
    subprocess.run([sys.executable, "-m", "flax_impl.train", *cmd, "--no-progress"], check=True)
    take(copies)
    return "trained" + (f"; rates {', '.join(f'{r:g}' for r in taken)} from {source}" if taken else "")


def figures(a, summary):
    files = []
    batches = [b for b in a.batches if "0" in summary[str(b)]["rates"]]
    if batches:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        peak = [summary[str(b)]["rates"]["0"]["peak_epoch"] for b in batches]
        ax.errorbar(batches, [p["mean"] for p in peak], yerr=[p["ci95"] or 0 for p in peak], marker="o", capsize=4,
                    label="BaseLine's val-accuracy peak")
        for r in [r for r in a.rates if r > 0]:
            cross = [summary[str(b)]["rates"][f"{r:g}"]["ahead_of_baseline"]["from"] for b in batches]
            ax.plot(batches, [np.nan if c is None else c for c in cross], "s--", label=f"Dropout {r:g} ahead from")
        ax.set(xscale="log", xlabel="batch size", ylabel="epoch", title="Peak and crossing against batch size")
        ax.minorticks_off()  # the log axis's minor labels ("6x10^1") sat over the batch sizes
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.grid(alpha=0.3)
        ax.legend()
        save_figure(fig, os.path.join(a.out, "fig_peak_and_crossing.png"))
        files.append("fig_peak_and_crossing.png")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for b in a.batches:
        stats_ = [summary[str(b)]["rates"][f"{r:g}"]["final_val_acc"] for r in a.rates]
        ax.errorbar(a.rates, [100 * s["mean"] for s in stats_], yerr=[100 * (s["ci95"] or 0) for s in stats_],
                    marker="o", capsize=4, label=f"batch {b}")
    ax.set(xlabel="dropout rate", ylabel="val accuracy at the last epoch (%)", title="Final accuracy against rate")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, os.path.join(a.out, "fig_rate.png"))
    return files + ["fig_rate.png"]


@exit_on_user_error("benchmarks.runners.sweep")
def main(argv=None):
    p = OneLineParser(prog="benchmarks.runners.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int_list(), default=[64, 256])
    p.add_argument("--rates", type=rate_list, default=[0.0, 0.5])
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    p.add_argument("--epochs", type=epochs_count, default=100)
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--reuse", action="append", default=[], help="a convergence run's folder to take lanes from")
    p.add_argument("--flax-args", default="", help="extra flags for flax_impl.train, e.g. '--device gpu'")
    a = p.parse_args(argv)
    out_folder(p, a.out)
    data_source(p, a.data)
    for folder in a.reuse:
        if not os.path.isfile(os.path.join(folder, "convergence.json")):
            p.error(f"--reuse {folder!r}: no convergence.json there (a folder written by benchmarks.runners.convergence)")
    for b in a.batches:  # finished lanes of another length or data are never relabelled, nor overwritten
        for f in [lane_file(a.out, b, r, s) for r in a.rates for s in a.seeds]:
            why = os.path.exists(f) and epochs_done(f) >= a.epochs and unusable(f, a, b)
            if why:
                p.error(f"{f} {why}: use another --out, or remove it to retrain")
    try:
        provenance = {b: run_batch(a, b) for b in a.batches}
    except subprocess.CalledProcessError as e:  # the training command said why, in its own one line
        p.exit(1, f"{p.prog}: error: flax_impl.train failed with exit {e.returncode}; no sweep.json written\n")
    summary = sweep_summary(a.out, a.batches, a.rates, a.seeds, provenance)
    result = {"command": "python -m benchmarks.runners.sweep " + " ".join(sys.argv[1:] if argv is None else argv),
              "batches": a.batches, "rates": a.rates, "seeds": a.seeds, "epochs": a.epochs, "summary": summary,
              "figures": figures(a, summary)}
    atomic_write_text(os.path.join(a.out, "sweep.json"), json.dumps(result, indent=1) + "\n")
    print(f"[sweep] wrote {os.path.join(a.out, 'sweep.json')}")


if __name__ == "__main__":
    main()
