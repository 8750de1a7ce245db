"""Do the two frameworks learn the same curves? An equivalence test, not an absence of evidence:
per model, metric and epoch, two one-sided Welch tests over seeds (benchmarks.report.stats.tost) with the
margins stated and justified in benchmarks/report/margins.py. Each checkpoint gets one of:
  'equivalent'            the difference lies inside the margin (TOST p < 0.05);
  'not equivalent'        it lies outside: the frameworks differ by more than the margin;
  'differs, within margin not shown'  a two-sided test finds a difference, but its size is not
                          pinned inside or outside the margin;
  'not shown'             neither: the seeds are too few to tell.
One multiplicity rule for both directions: the p-values of all three tests (equivalence, beyond the
margin, difference) are corrected across the table with Benjamini-Hochberg; a 90% CI that excludes
0 before correction is flagged, so a reader sees a difference the correction did not keep."""
import numpy as np

from benchmarks.report.claims import curves
from benchmarks.report.stats import ALPHA, bh, seeds_for_equivalence, tost
from benchmarks.report.margins import EQUIV_TRAIN_LOSS, EQUIV_VAL_ACC_POINTS, EQUIV_VAL_LOSS_RELATIVE

EPOCHS = (10, 50, 100)
# metric: (field, scale, margin(values of both frameworks) -> absolute margin, how it is stated)
METRICS = {
    "val accuracy (points)": ("val_acc", 100, lambda v: EQUIV_VAL_ACC_POINTS, f"±{EQUIV_VAL_ACC_POINTS:g}"),
    "train loss": ("train_loss", 1, lambda v: EQUIV_TRAIN_LOSS, f"±{EQUIV_TRAIN_LOSS:g}"),
    "val loss": ("val_loss", 1, lambda v: EQUIV_VAL_LOSS_RELATIVE * np.mean(v), f"±{100 * EQUIV_VAL_LOSS_RELATIVE:g}%"),
}


def equivalence(histories):
    """histories[framework][model] = per-seed histories, for 'flax' and 'torch'. Returns rows: one per
    model, metric and checkpoint epoch both frameworks reached, plus one for each seed's mean over the
    epochs both reached ('span'; a steady offset between the frameworks shows there with the least
    noise). Each verdict rests on p-values corrected across all rows (correct): with 24 tests at
    5%, one or two would pass by chance in either direction."""
    rows = []
    for model in ("baseline", "dropout"):
        c = {fw: curves(histories[fw][model]) for fw in ("flax", "torch")}
        n = min(c["flax"]["epochs"], c["torch"]["epochs"])
        for name, (field, scale, margin, stated) in METRICS.items():
            for epoch in [e for e in EPOCHS if e <= n] + [f"1–{n} (mean)"]:
                at = slice(None, n) if isinstance(epoch, str) else slice(epoch - 1, epoch)
                f, t = (scale * c[fw][field][:, at].mean(axis=1) for fw in ("flax", "torch"))
                m = margin(np.concatenate([f, t]))
                rows.append({"model": model, "metric": name, "epoch": epoch, "span": n, "seeds": (len(f), len(t)),
                             "flax": float(f.mean()), "torch": float(t.mean()), **tost(f, t, m),
                             "seeds_to_show": seeds_for_equivalence(f, t, m), "margin_stated": stated})
    return correct(rows)


CORRECTED = {"p": "equivalent", "p_beyond": "beyond", "p_two": "different"}  # p-value: the decision it makes


def correct(rows):
    """Every test's decision from its Benjamini-Hochberg-adjusted p-value across the rows (the same
    rule for equivalence and for difference), the verdict from those, and whether 0 lies outside the
    90% CI before any correction."""
    for key, decision in CORRECTED.items():
        for r, q in zip(rows, bh([r[key] for r in rows])):
            r[f"{key}_bh"] = float(q)
            r[decision] = bool(q < ALPHA)
    for r in rows:
        r["zero_outside_ci"] = bool(r["ci90"][0] > 0 or r["ci90"][1] < 0)
        r["verdict"] = verdict_of(r)
    return rows


def unreached(rows):
    """The checkpoint epochs (EPOCHS) left out because one framework did not reach them."""
    return [e for e in EPOCHS if rows and e > min(r["span"] for r in rows)]


VERDICTS = ("equivalent", "not equivalent", "differs, within margin not shown", "not shown")
NOT_A_NUMBER = "not tested (a value is not a number)"


def verdicts_in(rows):
    """The verdicts a table can hold: the four, and NOT_A_NUMBER where a row has it."""
    return VERDICTS + ((NOT_A_NUMBER,) if any(r["verdict"] == NOT_A_NUMBER for r in rows) else ())


def verdict_of(r):
    if not np.isfinite(r.get("diff", 0.0)):  # (a row made of p-values alone has none)
        return NOT_A_NUMBER
    if r["equivalent"]:
        return "equivalent"
    if r["beyond"]:
        return "not equivalent"
    return "differs, within margin not shown" if r["different"] else "not shown"


def table(rows):
    lines = ["| model | metric | epoch | flax | torch | flax − torch (90% CI) | 0 outside the CI (uncorrected) | "
             "margin | TOST p (BH) | difference p (BH) | verdict | seeds to show (each) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci90"]
        if r["verdict"] == NOT_A_NUMBER:
            lines.append(f"| {r['model']} | {r['metric']} | {r['epoch']} |" + " not a number |" * 3 + " – |" * 5
                         + f" {r['verdict']} | – |")
            continue
        lines.append(f"| {r['model']} | {r['metric']} | {r['epoch']} | {r['flax']:.3f} | {r['torch']:.3f} | "
                     f"{r['diff']:+.3f} ({lo:+.3f}, {hi:+.3f}) | {'yes' if r['zero_outside_ci'] else ''} | "
                     f"{r['margin_stated']} ({r['margin']:.3g}) | {r['p_bh']:.2g} | {r['p_two_bh']:.2g} | "
                     f"{r['verdict']} | "
                     f"{'shown' if r['equivalent'] else r['seeds_to_show'] or '–'} |")
    return "\n".join(lines)
