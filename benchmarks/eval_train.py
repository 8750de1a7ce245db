"""The report's section on the training loss measured in eval mode (claim c1e), from runs that repeat the
main runs' first epochs with --eval-train (`benchmarks.convergence --epochs 10 --flax-args --eval-train
--torch-args --eval-train`): the same seeds, data and settings, so their train and val columns should be
the main runs' own; the section says whether they are, per framework, before it uses them."""
import json
import os

import numpy as np

from benchmarks.claims import curves, slows, slows_in_eval_mode
from benchmarks.convergence import seed_dir
from benchmarks.provenance import machine_label
from experiment.history import load_history
from experiment.variants import MODELS

SAME_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")


def histories(folder):
    """{framework: {model: [histories]}} of a convergence folder, and its convergence.json."""
    conv = json.load(open(os.path.join(folder, "convergence.json")))
    fws = [fw for fw in ("flax", "torch") if fw in conv]
    return {fw: {m: [load_history(os.path.join(seed_dir(folder, fw, m, s), "history.json"))
                     for s in conv[fw].get("seeds", conv["seeds"])] for m in MODELS} for fw in fws}, conv


def repeats(measured, main):
    """Whether runs repeat the main runs' epochs: (largest |difference| of SAME_COLUMNS over their common
    epochs and seeds, seeds compared, seeds on another machine than the main run's)."""
    by_seed = {(h["model"], h["seed"]): h for h in main}
    diffs, compared, moved = [], 0, 0
    for h in measured:
        ref = by_seed.get((h["model"], h["seed"]))
        if ref is None:
            continue
        n = min(len(h["epochs"]), len(ref["epochs"]))
        compared += 1
        moved += machine_label(h) != machine_label(ref)
        for k in SAME_COLUMNS:
            a = np.array([e[k] for e in h["epochs"][:n]])
            b = np.array([e[k] for e in ref["epochs"][:n]])
            diffs.append(float(np.max(np.abs(a - b))) if n else 0.0)
    return max(diffs, default=None), compared, moved


def section(folder, main_hs):
    """Markdown lines: per framework, c1e beside c1 on the same runs, and how these runs relate to the main ones."""
    hs, conv = histories(folder)
    md = ["## The training loss in eval mode (c1e)", "",
          "c1 compares the training loss the tutorial reports: a running average over each epoch's steps in train "
          "mode, which dropout raises partly by construction (half the units are dropped while it is measured). "
          "c1e compares the training loss measured after each epoch in eval mode (no dropout) on the whole training "
          f"set. It comes from runs trained with `--eval-train` for {conv[next(iter(hs))].get('epochs', '?')} epochs "
          "(`" + conv["command"] + "`), which repeat the main runs' first epochs with the same seeds, data and "
          "settings: measuring in eval mode draws no random numbers and changes no weight.", "",
          "| framework | seeds | same train/val columns as the main runs | c1 (train mode) | c1e (eval mode) |",
          "|---|---|---|---|---|"]
    for fw, by_model in hs.items():
        b, d = curves(by_model["baseline"]), curves(by_model["dropout"])
        c1e = slows_in_eval_mode(b, d)
        if c1e is None:
            md.append(f"| {fw} | {len(by_model['baseline'])} | – | – | not measured (trained without --eval-train) |")
            continue
        c1 = slows(b, d, "train_loss", "c1", "training loss")
        main = main_hs.get(fw, {})
        worst, compared, moved = repeats(by_model["baseline"] + by_model["dropout"],
                                         main.get("baseline", []) + main.get("dropout", []))
        same = ("no main run to compare" if not compared else
                f"identical ({compared} runs, epochs 1–{b['epochs']})" if worst == 0 else
                f"differ by up to {worst:.2g} ({compared} runs; {moved} of them on another machine than the main "
                f"run's: another CPU can round float32 sums differently)")
        md.append(f"| {fw} | {len(by_model['baseline'])} | {same} | **{c1['verdict']}**: {c1['evidence']} | "
                  f"**{c1e['verdict']}**: {c1e['evidence']} |")
    return md + [""]
