"""The tutorial's claims, each split into its parts, and each part's verdict with its numbers,
computed from per-seed histories (benchmarks.report.stats for the tests).

    a1  BaseLine overfits: its validation loss rises from its minimum while its training loss falls
    a2  BaseLine's validation accuracy peaks around epoch 50
    a3  BaseLine is still ahead of Dropout at epoch 100 (the tutorial's last)
    b   Dropout removes the overfitting
    c1  Dropout slows the decrease of the training loss (its train-mode running average, as the tutorial reports it)
    c1e the same, with the training loss measured in eval mode after the epoch (runs trained with --eval-train)
    c2  Dropout slows the decrease of the validation loss
    d   Dropout overtakes BaseLine at epoch 200-300 (the tutorial's guess, from a BaseLine still ahead at 100),
        read two ways (benchmarks.report.overtake): d1 the curves cross; d2 Dropout's val accuracy passes
        that of the checkpoint BaseLine would keep (its best-val-loss epoch, as the tutorial keeps best_ckpt.pth)

A verdict is 'confirmed', 'refuted', 'undecided' (the run is too short, or the seeds too few) or
'not judged' (the run stopped before the epoch the test needs, see claim_rules.NEEDS; fewer seeds than
a test needs; or a value it reads is not a number).
"""
import warnings

import numpy as np

from benchmarks.report.claim_rules import (AT_ITS_EPOCH, EARLY_EPOCH, NEEDS, OVERTAKE, PEAK_AROUND,  # noqa: F401
                                           REMOVED_RISE, RISE_WINDOW, TUTORIAL_END, need, verdict)
from benchmarks.report.extent import extent, not_reached
from benchmarks.report.overtake import overtakes, passes_kept
from benchmarks.report.stats import ALPHA, MIN_SEEDS, mean_ci, paired_greater, slopes
from benchmarks.report.words import change, fmt, lead, p_text, seeds_with  # noqa: F401  (fmt, p_text: shared)
from experiment.history import column

FIELDS = {"train_loss": "training loss", "val_loss": "val loss", "val_acc": "val accuracy",
          "train_eval_loss": "training loss in eval mode"}
MODEL_NAMES = {"baseline": "BaseLine", "dropout": "Dropout"}


def curves(histories, n=None):
    """Per-seed arrays [seeds, epochs] of the run's first `n` epochs (default: all every seed has);
    accuracy also as exact counts."""
    n = n or min(len(h["epochs"]) for h in histories)
    n_val = histories[0]["data"]["n_val"]
    fields = ["train_loss", "val_loss", "val_acc"]
    if all(h["epochs"] and "train_eval_loss" in h["epochs"][0] for h in histories):  # trained with --eval-train
        fields.append("train_eval_loss")
    c = {k: np.stack([column(h, k)[:n] for h in histories]).astype(float) for k in fields}
    acc = c["val_acc"]
    # the integers the fractions came from (a value that is not a number is said by not_a_number, not counted)
    c["val_correct"] = np.rint(np.where(np.isfinite(acc), acc, 0) * n_val).astype(np.int64)
    c["n_val"], c["epochs"], c["planned"] = n_val, n, extent(histories)["planned"]
    c["seeds"] = [h.get("seed", i) for i, h in enumerate(histories)]
    return c


def upto(c, n):
    """The curves of their first `n` epochs."""
    return {**c, **{k: v[:, :n] for k, v in c.items() if isinstance(v, np.ndarray)}, "epochs": n}


def not_a_number(c, model):
    """'seed 1's BaseLine val loss is not a number at epoch 5' for the first non-finite value, or None."""
    for field, what in FIELDS.items():
        if field in c and not np.isfinite(c[field]).all():
            seed, epoch = np.argwhere(~np.isfinite(c[field]))[0]
            return (f"seed {c['seeds'][seed]}'s {MODEL_NAMES[model]} {what} is not a number at epoch {epoch + 1} "
                    "(a diverged run or a damaged history)")
    return None


def ci_bounds(stat):
    """(low, high) of a mean's 95% CI; the mean itself where there is no interval (one seed)."""
    return stat["mean"] - (stat["ci95"] or 0), stat["mean"] + (stat["ci95"] or 0)


def placed(stat, window):
    """Where a mean's 95% CI lies against a window (low, high): 'inside', 'outside' or 'overlaps'."""
    lo, hi = ci_bounds(stat)
    if window[0] <= lo and hi <= window[1]:
        return "inside"
    return "outside" if hi < window[0] or lo > window[1] else "overlaps"


def end_rise(c):
    """Per seed, the val loss's rise over the last RISE_WINDOW epochs by its fitted slope (None under
    3 epochs), and the window's length."""
    k = min(RISE_WINDOW, c["epochs"])
    return (k * slopes(c["val_loss"][:, -k:]) if k >= 3 else None), k


def overfits(b):
    """The rise is tested by the slope over the last epochs, which can be negative; last minus
    minimum cannot, so it is given as a size with its CI, never a p-value."""
    rise, k = end_rise(b)
    above_min = mean_ci(b["val_loss"][:, -1] - b["val_loss"].min(axis=1))
    at_min = b["val_loss"].argmin(axis=1)
    lower = int(np.sum(b["train_loss"][:, -1] < b["train_loss"][np.arange(len(at_min)), at_min]))
    train_falls = lower == len(at_min)
    p = float(paired_greater(rise, np.zeros_like(rise))) if rise is not None else None
    gap = mean_ci(b["val_loss"][:, -1] - b["train_loss"][:, -1])
    result = "undecided" if p is None else "confirmed" if p < ALPHA and train_falls else "refuted"
    trend = (f"val loss {change(mean_ci(rise), 3)} over the last {k} epochs (fitted slope; rises: {p_text(p)})"
             if p is not None else f"too few epochs ({k}) for a slope")
    return verdict("a1", "BaseLine overfits: its validation loss rises from its minimum while its training loss falls",
                   result, f"{trend}; at epoch {b['epochs']} it is {fmt(above_min, digits=2)} above its minimum "
                   f"(reached at epoch {fmt(mean_ci(at_min + 1))}); training loss lower at the end than there "
                   f"{seeds_with(lower, len(at_min))}; val − train loss gap {fmt(gap, digits=2)}",
                   rise=mean_ci(rise) if rise is not None else None, above_min=above_min, p=p, gap=gap)


def peak_epoch(b):
    peak = b["val_correct"].argmax(axis=1) + 1
    stat = mean_ci(peak)
    lo, hi = ci_bounds(stat)
    where = placed(stat, PEAK_AROUND)
    if b["epochs"] < PEAK_AROUND[1] or (where == "inside" and b["epochs"] < b["planned"]):
        result = "undecided"  # a window not yet passed, or a later peak still possible
    else:
        result = {"inside": "confirmed", "outside": "refuted", "overlaps": "undecided"}[where]
    fall = mean_ci(b["val_acc"].max(axis=1) - b["val_acc"][:, -1])
    after = (f"and is still there at epoch {b['epochs']}" if fall["mean"] == 0 else
             f"then falls {fmt(fall, 100, 2)} points by epoch {b['epochs']}")
    return verdict("a2", "BaseLine's validation accuracy peaks around epoch 50", result,
                   f"peaks at epoch {fmt(stat)} (95% CI {lo:.0f}–{hi:.0f}, {where} {PEAK_AROUND[0]}–"
                   f"{PEAK_AROUND[1]}) with {fmt(mean_ci(b['val_acc'].max(axis=1)), 100, 2, '%')}, {after}",
                   peak=stat, fall=fall)


def ahead_at_end(b, d):
    """a3, at the epoch the curves end (the claim's: they were cut there)."""
    end = b["epochs"]
    p_base = float(paired_greater(b["val_correct"][:, -1], d["val_correct"][:, -1]))
    p_drop = float(paired_greater(d["val_correct"][:, -1], b["val_correct"][:, -1]))
    lead_ = mean_ci(100 * (d["val_acc"][:, -1] - b["val_acc"][:, -1]))
    result = "confirmed" if p_base < ALPHA else "refuted" if p_drop < ALPHA else "undecided"
    return verdict("a3", f"BaseLine is still ahead of Dropout at epoch {need('a3', b['planned'])}", result,
                   f"at epoch {end} {lead(lead_, 'Dropout', 'BaseLine', 'points of val accuracy', 2)} (BaseLine "
                   f"ahead: {p_text(p_base)}; Dropout ahead: {p_text(p_drop)})", lead=lead_, p_base=p_base,
                   p_drop=p_drop)


def removes_overfitting(b, d):
    """Only within the epochs read: a minimum near the last epoch says nothing of later ones."""
    rel = {m: c["val_loss"][:, -1] / c["val_loss"].min(axis=1) - 1 for m, c in (("baseline", b), ("dropout", d))}
    drop = mean_ci(rel["dropout"])
    p = float(paired_greater(rel["baseline"], rel["dropout"]))
    upper = ci_bounds(drop)[1]
    result = "confirmed" if upper < REMOVED_RISE and p < ALPHA else "refuted"
    best = mean_ci(d["val_loss"].argmin(axis=1) + 1)
    rise, k = end_rise(d)
    trend = f"; over its last {k} epochs it {change(mean_ci(rise), 3)}" if rise is not None else ""
    judged_at = need("b", d["planned"])
    scope = (f"; epochs after {judged_at} (the tutorial's {OVERTAKE[0]}–{OVERTAKE[1]}) are not tested here"
             if d["planned"] == judged_at else
             f"; judged at epoch {judged_at}, the tutorial's: epochs {judged_at + 1}–{d['planned']} are not read by "
             "this claim")
    return verdict("b", f"Dropout removes the overfitting (tested within {judged_at} epochs)", result,
                   f"Dropout's val loss at epoch {d['epochs']} is {fmt(drop, 100, 1, '%')} above its minimum "
                   f"(BaseLine: {fmt(mean_ci(rel['baseline']), 100, 0, '%')}; less than BaseLine's: {p_text(p)}; "
                   f"no overfitting means under {100 * REMOVED_RISE:.0f}%), its best epoch {fmt(best)}{trend}{scope}",
                   rise=drop, p=p, best_epoch=best)


def slows(b, d, field, claim_id, what, note=""):
    e = min(EARLY_EPOCH, b["epochs"]) - 1
    p = float(paired_greater(d[field][:, e], b[field][:, e]))
    return verdict(claim_id, f"Dropout slows the decrease of the {what}{note}", "confirmed" if p < ALPHA else "refuted",
                   f"{what} after {e + 1} epochs {fmt(mean_ci(b[field][:, e]), digits=3)} (BaseLine) vs "
                   f"{fmt(mean_ci(d[field][:, e]), digits=3)} (Dropout); Dropout higher: {p_text(p)}",
                   baseline=mean_ci(b[field][:, e]), dropout=mean_ci(d[field][:, e]), p=p, epoch=e + 1)


def slows_in_eval_mode(b, d):
    """c1e: c1 with the training loss measured in eval mode; None for runs that did not measure it."""
    if "train_eval_loss" not in b or "train_eval_loss" not in d:
        return None
    return slows(b, d, "train_eval_loss", "c1e", "training loss measured in eval mode",
                 " (on the training set after the epoch, no dropout)")


# The eval-mode measures (c2, c1e) before c1: the train-mode running loss is higher under dropout partly
# by construction.
CLAIMS = {"a1": lambda b, d: overfits(b), "a2": lambda b, d: peak_epoch(b), "a3": ahead_at_end,
          "b": removes_overfitting, "c2": lambda b, d: slows(b, d, "val_loss", "c2", "validation loss"),
          "c1e": slows_in_eval_mode,
          "c1": lambda b, d: slows(b, d, "train_loss", "c1", "training loss", " (its train-mode running average, "
                                   "which dropout raises partly by construction)"), "d1": overtakes, "d2": passes_kept}


def too_few_seeds(seeds):
    return f"{seeds} seed: a test over seeds needs at least {MIN_SEEDS}" if seeds < MIN_SEEDS else None


def not_judged(v, why, shown):
    """The verdict withheld, with why (`short`: the first screen's words) and what the epochs reached show."""
    evidence = f"{why}; {shown}: {v['evidence']}" if shown else why
    return {**v, "verdict": "not judged", "evidence": evidence, "why": why, "numbers": v["numbers"] if shown else {}}


def judge(claim_id, b, d, ext, why):
    """One claim on the curves it reads, or why it is not judged; None where the runs did not measure it."""
    needed = need(claim_id, ext["planned"])
    span = min(ext["reached"], needed) if claim_id in AT_ITS_EPOCH else ext["reached"]
    bs, ds = upto(b, span), upto(d, span)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a NaN in a history: said below instead
        v = CLAIMS[claim_id](bs, ds)
    if v is None:
        return None
    v["needs_epoch"] = needed  # the epoch it is about (the first screen names it)
    nan = not_a_number(bs, "baseline") or not_a_number(ds, "dropout")
    if nan:
        return not_judged(v, f"not judged: {nan}, within the epochs this claim reads (1–{span})", None)
    if too_few_seeds(len(b["seeds"])):
        return not_judged(v, f"not judged: {too_few_seeds(len(b['seeds']))}", "the seed shows")
    if v["verdict"] is None:  # an outcome that needs the planned end
        needed = v["numbers"]["waits"]
    if needed > ext["reached"]:
        return not_judged(v, not_reached(needed, ext, why), f"epochs 1–{ext['reached']} show")
    return v


def tutorial_claims(base_histories, drop_histories, why=None):
    """Every claim's verdict; a claim whose needed epoch the run did not reach is 'not judged', with
    that reason (`why`: what stopped the run) and what the epochs it reached show."""
    ext = extent(list(base_histories) + list(drop_histories))
    b, d = curves(base_histories, ext["reached"]), curves(drop_histories, ext["reached"])
    b["planned"] = d["planned"] = ext["planned"]
    return [v for v in (judge(claim_id, b, d, ext, why) for claim_id in CLAIMS) if v is not None]
