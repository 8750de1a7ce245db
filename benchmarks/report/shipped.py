"""'The checkpoint you would ship': the test accuracy of each model's best-validation-loss checkpoint
(what the tutorial's best_ckpt.pth answers), Dropout against BaseLine paired by seed (both models of
a seed start from the same weights and batches)."""
import numpy as np

from benchmarks.report.claims import fmt, p_text
from benchmarks.report.extent import cut, of
from benchmarks.report.stats import mean_ci, paired_greater


def shipped(per_seed):
    """From convergence.json's per_seed[model] rows: the seeds whose both checkpoints were evaluated,
    each model's test accuracy and Dropout − BaseLine in points, mean ± 95% CI; None when none was."""
    pairs = [(b["test_acc"], d["test_acc"]) for b, d in zip(per_seed["baseline"], per_seed["dropout"])
             if b["test_acc"] is not None and d["test_acc"] is not None]
    if not pairs:
        return None
    b, d = (100 * np.array(x) for x in zip(*pairs))
    return {"seeds": len(pairs), "of": len(per_seed["baseline"]), "baseline": mean_ci(b), "dropout": mean_ci(d),
            "lead": mean_ci(d - b), "p_dropout": float(paired_greater(d, b)), "p_baseline": float(paired_greater(b, d))}


def section(conv, frameworks, exts):
    md = ["## The checkpoint you would ship", "",
          "Test accuracy of each model's best-validation-loss checkpoint (the one the tutorial keeps), over the "
          "seeds whose checkpoints were evaluated; Dropout − BaseLine paired by seed, one-sided paired t-tests. "
          "Mean ± 95% CI. A run that stopped early shipped the best of the epochs it reached.", "",
          "| framework | seeds | checkpoints from | BaseLine | Dropout | Dropout − BaseLine (points) | "
          "Dropout better | BaseLine better |", "|---|---|---|---|---|---|---|---|"]
    for fw in frameworks:
        s = shipped(conv[fw]["per_seed"])
        where = f"epochs 1–{exts[fw]['reached']}" + (f" ({of(exts[fw])})" if cut(exts[fw]) else "")
        if s is None:
            md.append(f"| {fw} | 0 | {where} | not evaluated | not evaluated | – | – | – |")
            continue
        md.append(f"| {fw} | {s['seeds']} of {s['of']} | {where} | {fmt(s['baseline'], digits=2, unit='%')} | "
                  f"{fmt(s['dropout'], digits=2, unit='%')} | {fmt(s['lead'], digits=2)} | {p_text(s['p_dropout'])} | "
                  f"{p_text(s['p_baseline'])} |")
    return md + [""]
