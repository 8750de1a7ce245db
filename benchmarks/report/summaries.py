"""The numbers a runner's summary file holds (convergence.json, sweep.json), computed from its runs'
histories: per seed and over seeds. The runners write them beside their runs; the report reads them
back. Every statistic of the report is computed in this folder (benchmarks/report/)."""
import os

import numpy as np

from benchmarks.folders import evaluation_of, history_done, lane_file, seed_dir
from benchmarks.report.claims import curves
from benchmarks.report.stats import ahead, mean_ci
from experiment.frameworks import FRAMEWORKS
from experiment.history import column, load_history
from experiment.variants import MODELS

THRESHOLDS = (0.45, 0.50, 0.55)
TRAIN_LOSS_AT = (10, 50, 100)


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


def convergence_summary(out, frameworks, seeds, planned, stopped=None):
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


def sweep_summary(out, batches, rates, seeds, lanes_made):
    """Per batch size: BaseLine's peak epoch, and per rate the crossing and the final accuracy;
    lanes_made[batch] says where its lanes came from."""
    result = {}
    for batch in batches:
        c = {r: curves([load_history(lane_file(out, batch, r, s)) for s in seeds]) for r in rates}
        base = c.get(0.0)
        rows = {}
        for r, cr in c.items():
            row = {"final_val_acc": mean_ci(cr["val_acc"][:, -1]), "best_val_acc": mean_ci(cr["val_acc"].max(axis=1)),
                   "best_val_loss": mean_ci(cr["val_loss"].min(axis=1)),
                   "peak_epoch": mean_ci(cr["val_correct"].argmax(axis=1) + 1)}
            if base is not None and r > 0:
                row["ahead_of_baseline"] = ahead(cr["val_correct"], base["val_correct"])
            rows[f"{r:g}"] = row
        n_train = load_history(lane_file(out, batch, rates[0], seeds[0]))["data"]["n_train"]
        result[str(batch)] = {"epochs": min(cr["epochs"] for cr in c.values()), "rates": rows,
                              "steps_per_epoch": -(-n_train // batch), "lanes": lanes_made.get(batch)}
    return result
