"""'What one seed would have shown': the tutorial drew one run per model. Over the seeds run here, how
often would that one seed have shown what the tutorial saw at its epoch 100 (or the last its runs
reached): BaseLine still ahead, or Dropout below BaseLine's best, or BaseLine's best above Dropout's.
Counts of seeds, each with a 95% Clopper-Pearson interval for how often a new seed would
(scipy.stats.binomtest)."""
import numpy as np
from scipy import stats

from benchmarks.report.claim_rules import TUTORIAL_END
from benchmarks.report.claims import curves

SEEN = {  # what one seed shows at epoch E: (column header, per-seed test on counts [seeds, epochs 1..E])
    "ahead": ("BaseLine still ahead of Dropout at epoch E", lambda b, d: b[:, -1] > d[:, -1]),
    "below_best": ("Dropout at epoch E below BaseLine's best", lambda b, d: d[:, -1] < b.max(axis=1)),
    "best_above": ("BaseLine's best above Dropout's best", lambda b, d: b.max(axis=1) > d.max(axis=1)),
}


def share(k, n):
    """'k of n (lo–hi%)' with the 95% Clopper-Pearson interval."""
    ci = stats.binomtest(int(k), n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k} of {n} ({100 * ci.low:.0f}–{100 * ci.high:.0f}%)"


def counts(b, d):
    """{what: (k, n)} over the seeds whose values are all numbers."""
    ok = np.isfinite(b["val_acc"]).all(axis=1) & np.isfinite(d["val_acc"]).all(axis=1)
    bc, dc = b["val_correct"][ok], d["val_correct"][ok]
    return {k: (int(test(bc, dc).sum()), int(ok.sum())) for k, (_, test) in SEEN.items()}


def section(hs, exts):
    """hs[framework][model]: per-seed histories; exts[framework]: how far its runs got (extent)."""
    md = ["## What one seed would have shown", "",
          "Why did the tutorial see what it saw? It drew one seed per model and, with BaseLine's best still above "
          "Dropout's curve at its last epoch, guessed that Dropout overtakes later. Each column counts the seeds run "
          "here in which that one seed alone would have shown it at epoch E (the tutorial's "
          f"{TUTORIAL_END}, or the last its runs reached), with a 95% Clopper–Pearson interval for how often a new "
          "seed would. Val accuracy as exact counts; 'best' is the best of epochs 1–E.", "",
          "| framework | seeds | E | " + " | ".join(h for h, _ in SEEN.values()) + " |",
          "|---|---|---|" + "---|" * len(SEEN)]
    for fw, by_model in hs.items():
        end = min(exts[fw]["reached"], TUTORIAL_END)
        b, d = (curves(by_model[m], end) for m in ("baseline", "dropout"))
        found = counts(b, d)
        n = next(iter(found.values()))[1]
        seeds = f"{n}" + (f" (of {len(b['seeds'])}; the others hold a value that is not a number)"
                          if n < len(b["seeds"]) else "")
        md.append(f"| {fw} | {seeds} | {end} | " + " | ".join(share(k, n) if n else "–" for k, n in found.values())
                  + " |")
    return md + [""]
