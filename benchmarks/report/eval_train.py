"""The report's section on the training loss measured in eval mode (claim c1e), from runs of the main runs'
protocol (same seeds, data and settings) trained for their first epochs with --eval-train
(`benchmarks.runners.convergence --epochs 10 --flax-args=--eval-train --torch-args=--eval-train`). Whether their
train and val columns equal the main runs' is measured, not assumed (the main runs may come from another
code version or machine); c1 is judged again on the same runs, so that c1 and c1e compare the same runs."""

import numpy as np

from benchmarks.folders import convergence_histories
from benchmarks.report.claims import curves, slows, slows_in_eval_mode
from benchmarks.report.provenance import machine_label

SAME_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")


def repeats(measured, main):
    """Whether runs repeat the main runs' epochs: (largest |difference| of SAME_COLUMNS over their common
    epochs and seeds, runs compared, runs on another machine than the main run's, first epoch that differs
    in any run or None)."""
    by_seed = {(h["model"], h["seed"]): h for h in main}
    diffs, compared, moved, first = [], 0, 0, None
    for h in measured:
        ref = by_seed.get((h["model"], h["seed"]))
        if ref is None:
            continue
        n = min(len(h["epochs"]), len(ref["epochs"]))
        compared += 1
        moved += machine_label(h) != machine_label(ref)
        for k in SAME_COLUMNS:
            gap = np.abs(np.array([e[k] for e in h["epochs"][:n]]) - np.array([e[k] for e in ref["epochs"][:n]]))
            diffs.append(float(gap.max()) if n else 0.0)
            if gap.any():
                first = min(first or n, int(np.argmax(gap > 0)) + 1)
    return max(diffs, default=None), compared, moved, first


def section(folder, main_hs):
    """Markdown lines: per framework, c1e beside c1 on the same runs, and how these runs relate to the main ones."""
    hs, conv = convergence_histories(folder)
    reached = min(len(h["epochs"]) for by_model in hs.values() for runs in by_model.values() for h in runs)
    md = ["## The training loss in eval mode (c1e)", "",
          "c1 compares the training loss the tutorial reports: a running average over each epoch's steps in train "
          "mode, which dropout raises partly by construction (half the units are dropped while it is measured). "
          "c1e compares the training loss measured after each epoch in eval mode (no dropout) on the whole training "
          f"set. It comes from runs of the main runs' protocol (same seeds, data and settings) trained with "
          f"`--eval-train` for their first {reached} epochs (`" + conv["command"] + "`); "
          "measuring in eval mode draws no random numbers and changes no weight (tests/test_eval_train.py). c1 is "
          "judged again on these runs, so that c1 and c1e compare the same runs; the third column says whether "
          "they also equal the main runs' first epochs.", "",
          "| framework | seeds | train/val columns against the main runs' | c1 (train mode) | c1e (eval mode) |",
          "|---|---|---|---|---|"]
    for fw, by_model in hs.items():
        b, d = curves(by_model["baseline"]), curves(by_model["dropout"])
        c1e = slows_in_eval_mode(b, d)
        if c1e is None:
            md.append(f"| {fw} | {len(by_model['baseline'])} | – | – | not measured (trained without --eval-train) |")
            continue
        c1 = slows(b, d, "train_loss", "c1", "training loss")
        main = main_hs.get(fw, {})
        worst, compared, moved, first = repeats(by_model["baseline"] + by_model["dropout"],
                                                main.get("baseline", []) + main.get("dropout", []))
        same = ("no main run to compare" if not compared else
                f"identical ({compared} runs, epochs 1–{b['epochs']})" if worst == 0 else
                f"differ from epoch {first}, by up to {worst:.2g} ({compared} runs, {moved} of them on another "
                "machine than their main run; the main runs' code versions are under Provenance): runs of the same "
                "protocol, not copies of the main runs")
        md.append(f"| {fw} | {len(by_model['baseline'])} | {same} | **{c1['verdict']}**: {c1['evidence']} | "
                  f"**{c1e['verdict']}**: {c1e['evidence']} |")
    return md + [""]
