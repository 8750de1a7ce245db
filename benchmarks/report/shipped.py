"""'The checkpoint you would ship': the test accuracy of each model's best-validation-loss checkpoint
(what the tutorial's best_ckpt.pth answers), Dropout against BaseLine paired by seed (both models of
a seed start from the same weights and batches)."""
import numpy as np

from benchmarks.report.extent import cut, of
from benchmarks.report.stats import mean_ci, paired_greater, smallest_detectable
from benchmarks.report.words import fmt, p_text
from experiment.variants import MODELS


def shipped(per_seed):
    """From convergence.json's per_seed[model] rows: the seeds whose both checkpoints were evaluated,
    each model's test accuracy and Dropout − BaseLine in points, mean ± 95% CI, the p-values of each
    side, the mean epoch each checkpoint came from, and the smallest difference these seeds detect with
    80% power; None when none was evaluated."""
    pairs = [(b, d) for b, d in zip(per_seed["baseline"], per_seed["dropout"])
             if b["test_acc"] is not None and d["test_acc"] is not None]
    if not pairs:
        return None
    b, d = (100 * np.array([r["test_acc"] for r in rows]) for rows in zip(*pairs))
    epochs = {m: float(np.mean([p[i]["best_val_loss_epoch"] for p in pairs])) for i, m in enumerate(MODELS)
              if all("best_val_loss_epoch" in p[i] for p in pairs)}
    return {"seeds": len(pairs), "of": len(per_seed["baseline"]), "baseline": mean_ci(b), "dropout": mean_ci(d),
            "lead": mean_ci(d - b), "p_dropout": float(paired_greater(d, b)), "p_baseline": float(paired_greater(b, d)),
            "epochs": epochs if len(epochs) == 2 else None, "detectable": smallest_detectable(d - b)}


def section(conv, frameworks, exts):
    md = ["## The checkpoint you would ship", "",
          "Test accuracy of each model's best-validation-loss checkpoint (the one the tutorial keeps), over the "
          "seeds whose checkpoints were evaluated; Dropout − BaseLine paired by seed, one-sided paired t-tests. "
          "Mean ± 95% CI. A run that stopped early shipped the best of the epochs it reached. 'Best epoch' is the "
          "mean epoch each model's checkpoint comes from (the epochs it cost); 'detectable' is the smallest "
          "Dropout − BaseLine difference a one-sided paired t-test at 5% over these seeds detects with 80% power, "
          "at the spread observed (noncentral t).", "",
          "| framework | seeds | checkpoints from | BaseLine | Dropout | Dropout − BaseLine (points) | "
          "Dropout better | BaseLine better | best epoch (BaseLine / Dropout) | detectable (points) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for fw in frameworks:
        s = shipped(conv[fw]["per_seed"])
        where = f"epochs 1–{exts[fw]['reached']}" + (f" ({of(exts[fw])})" if cut(exts[fw]) else "")
        if s is None:
            md.append(f"| {fw} | 0 | {where} | not evaluated | not evaluated | – | – | – | – | – |")
            continue
        cost = f"{s['epochs']['baseline']:.1f} / {s['epochs']['dropout']:.1f}" if s["epochs"] else "–"
        detect = f"{s['detectable']:.2f}" if s["detectable"] is not None else "–"
        md.append(f"| {fw} | {s['seeds']} of {s['of']} | {where} | {fmt(s['baseline'], digits=2, unit='%')} | "
                  f"{fmt(s['dropout'], digits=2, unit='%')} | {fmt(s['lead'], digits=2)} | {p_text(s['p_dropout'])} | "
                  f"{p_text(s['p_baseline'])} | {cost} | {detect} |")
    return md + [""]
