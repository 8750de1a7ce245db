"""The tutorial's claims, each split into its parts, and each part's verdict with its numbers,
computed from per-seed histories (benchmarks.report.stats for the tests).

    a1  BaseLine overfits: its validation loss rises from its minimum while its training loss falls
    a2  BaseLine's validation accuracy peaks around epoch 50
    a3  BaseLine is still ahead of Dropout at the last epoch (the tutorial's epoch 100)
    b   Dropout removes the overfitting
    c1  Dropout slows the decrease of the training loss (its train-mode running average, as the tutorial reports it)
    c1e the same, with the training loss measured in eval mode after the epoch (runs trained with --eval-train)
    c2  Dropout slows the decrease of the validation loss
    d   Dropout overtakes BaseLine at epoch 200-300 (the tutorial's guess, from a BaseLine still ahead at 100),
        read two ways: d1 the curves cross; d2 Dropout's val accuracy passes that of the checkpoint
        BaseLine would keep (its best-val-loss epoch, as the tutorial keeps best_ckpt.pth)

A verdict is 'confirmed', 'refuted', 'undecided' (the run is too short, or the seeds too few) or
'not judged' (the run stopped before the epoch the test needs; see NEEDS).
"""
import numpy as np

from benchmarks.report.extent import extent, not_reached
from benchmarks.report.stats import ALPHA, ahead, held_from, mean_ci, paired_greater, slopes
from experiment.history import column

PEAK_AROUND = (40, 60)   # "peaks ~ epoch 50": confirmed when the peak's 95% CI lies inside, refuted when outside
REMOVED_RISE = 0.05      # a val-loss rise under 5% of its minimum at the end of the run is no overfitting
EARLY_EPOCH = 10         # where "slows the loss decrease" is measured
RISE_WINDOW = 10         # the last epochs whose fitted val-loss slope says whether it still rises (a1, b)
OVERTAKE = (200, 300)    # the tutorial's guess
END = float("inf")       # the run's planned last epoch

# The epoch each claim's test needs: its own epoch, or the run's planned last one if the run planned
# fewer. A run that stopped before it does not get that claim judged (a cut run's last epoch is not
# the one the claim is about). a2 needs its window's end: a peak before it is placed; a peak after
# the epochs reached could still come, so a cut run's peak is never confirmed (peak_epoch).
NEEDS = {"a1": END, "a2": PEAK_AROUND[1], "a3": END, "b": END, "c1": EARLY_EPOCH, "c1e": EARLY_EPOCH,
         "c2": EARLY_EPOCH, "d1": OVERTAKE[1], "d2": OVERTAKE[1]}


def need(claim_id, planned):
    return int(min(planned, NEEDS[claim_id]))


def curves(histories, n=None):
    """Per-seed arrays [seeds, epochs] of the run's first `n` epochs (default: all every seed has);
    accuracy also as exact counts."""
    n = n or min(len(h["epochs"]) for h in histories)
    n_val = histories[0]["data"]["n_val"]
    fields = ["train_loss", "val_loss", "val_acc"]
    if all(h["epochs"] and "train_eval_loss" in h["epochs"][0] for h in histories):  # trained with --eval-train
        fields.append("train_eval_loss")
    c = {k: np.stack([column(h, k)[:n] for h in histories]) for k in fields}
    c["val_correct"] = np.rint(c["val_acc"] * n_val).astype(np.int64)  # the integers the fractions came from
    c["n_val"], c["epochs"], c["planned"] = n_val, n, extent(histories)["planned"]
    return c


def ci_bounds(stat):
    """(low, high) of a mean's 95% CI; the mean itself where there is no interval (one seed)."""
    return stat["mean"] - (stat["ci95"] or 0), stat["mean"] + (stat["ci95"] or 0)


def placed(stat, window):
    """Where a mean's 95% CI lies against a window (low, high): 'inside', 'outside' or 'overlaps'."""
    lo, hi = ci_bounds(stat)
    if window[0] <= lo and hi <= window[1]:
        return "inside"
    return "outside" if hi < window[0] or lo > window[1] else "overlaps"


def fmt(stat, scale=1.0, digits=1, unit="", total=None):
    """'mean ± ci'; with `total`, says how many seeds the mean is over when some never got there."""
    if stat["mean"] is None:
        return "never"
    s = f"{scale * stat['mean']:.{digits}f}{unit}"
    s += f" ± {scale * stat['ci95']:.{digits}f}" if stat["ci95"] is not None else ""
    return s + (f" ({stat['n']} of {total} seeds)" if total is not None and stat["n"] < total else "")


def p_text(p):
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4"


def verdict(claim_id, claim, result, evidence, **numbers):
    return {"id": claim_id, "claim": claim, "verdict": result, "evidence": evidence, "numbers": numbers}


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
    train_falls = bool(np.all(b["train_loss"][:, -1] < b["train_loss"][np.arange(len(at_min)), at_min]))
    p = float(paired_greater(rise, np.zeros_like(rise))) if rise is not None else None
    gap = mean_ci(b["val_loss"][:, -1] - b["train_loss"][:, -1])
    result = "undecided" if p is None else "confirmed" if p < ALPHA and train_falls else "refuted"
    trend = (f"val loss rises by {fmt(mean_ci(rise), digits=3)} over the last {k} epochs (fitted slope; rises: "
             f"{p_text(p)})" if p is not None else f"too few epochs ({k}) for a slope")
    return verdict("a1", "BaseLine overfits: its validation loss rises from its minimum while its training loss falls",
                   result, f"{trend}; at epoch {b['epochs']} it is {fmt(above_min, digits=2)} above its minimum "
                   f"(reached at epoch {fmt(mean_ci(at_min + 1))}); training loss lower at the end than there in "
                   f"{'every seed' if train_falls else 'not every seed'}; val − train loss gap {fmt(gap, digits=2)}",
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
    return verdict("a2", "BaseLine's validation accuracy peaks around epoch 50", result,
                   f"peaks at epoch {fmt(stat)} (95% CI {lo:.0f}–{hi:.0f}, {where} {PEAK_AROUND[0]}–"
                   f"{PEAK_AROUND[1]}) with {fmt(mean_ci(b['val_acc'].max(axis=1)), 100, 2, '%')}, then falls "
                   f"{fmt(fall, 100, 2)} points by epoch {b['epochs']}", peak=stat, fall=fall)


def ahead_at_end(b, d):
    end = b["epochs"]
    p_base = float(paired_greater(b["val_correct"][:, -1], d["val_correct"][:, -1]))
    p_drop = float(paired_greater(d["val_correct"][:, -1], b["val_correct"][:, -1]))
    lead = mean_ci(100 * (d["val_acc"][:, -1] - b["val_acc"][:, -1]))
    result = "confirmed" if p_base < ALPHA else "refuted" if p_drop < ALPHA else "undecided"
    return verdict("a3", f"BaseLine is still ahead of Dropout at epoch {b['planned']}", result,
                   f"at epoch {end} Dropout leads by {fmt(lead, digits=2)} points of val accuracy (BaseLine ahead: "
                   f"{p_text(p_base)}; Dropout ahead: {p_text(p_drop)})", lead=lead, p_base=p_base, p_drop=p_drop)


def removes_overfitting(b, d):
    """Only within the epochs run: a minimum near the last epoch says nothing of later ones."""
    rel = {m: c["val_loss"][:, -1] / c["val_loss"].min(axis=1) - 1 for m, c in (("baseline", b), ("dropout", d))}
    drop = mean_ci(rel["dropout"])
    p = float(paired_greater(rel["baseline"], rel["dropout"]))
    upper = ci_bounds(drop)[1]
    result = "confirmed" if upper < REMOVED_RISE and p < ALPHA else "refuted"
    best = mean_ci(d["val_loss"].argmin(axis=1) + 1)
    rise, k = end_rise(d)
    trend = f"; over its last {k} epochs it changes by {fmt(mean_ci(rise), digits=3)}" if rise is not None else ""
    scope = (f"; epochs after {d['epochs']} (the tutorial's {OVERTAKE[0]}–{OVERTAKE[1]}) are not tested here"
             if d["epochs"] < OVERTAKE[1] else "")
    return verdict("b", f"Dropout removes the overfitting (tested within {d['planned']} epochs)", result,
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
                   baseline=mean_ci(b[field][:, e]), dropout=mean_ci(d[field][:, e]), p=p)


def overtake_verdict(from_epoch, end):
    """'From epoch 200-300, not before', for the epoch from which Dropout stays ahead through the last
    epoch `end` (None: not ahead there)."""
    if from_epoch is None:
        return "refuted" if end >= OVERTAKE[1] else "undecided"
    return "confirmed" if OVERTAKE[0] <= from_epoch <= OVERTAKE[1] else "refuted"


def overtakes(b, d):
    a = ahead(d["val_correct"], b["val_correct"])
    end = b["epochs"]
    crossings = a["mean_crossings"]
    share = f"{100 * a['share_after_first']:.0f}%" if a["share_after_first"] is not None else "–"
    return verdict("d1", "Dropout overtakes BaseLine at epoch 200–300, not before: the curves cross",
                   overtake_verdict(a["from"], end),
                   f"Dropout is significantly ahead (paired by seed, Benjamini–Hochberg over {end} epochs) first "
                   f"{'at epoch ' + str(a['first']) if a['first'] else 'never'} and at every epoch "
                   f"{'from ' + str(a['from']) + ' on' if a['from'] else 'through the end: never'}; ahead at "
                   f"{share} of the epochs after the first; the summed correct counts change order at epochs "
                   f"{', '.join(map(str, crossings)) or 'none'}", **a)


def first_epoch(mask):
    """1-based first epoch where `mask` holds, or None."""
    return int(np.argmax(mask)) + 1 if np.any(mask) else None


def passes_kept(b, d):
    """d2: Dropout's val accuracy passes the accuracy of the checkpoint BaseLine keeps (its
    best-val-loss epoch, per seed; the tutorial's best_ckpt.pth; its best val accuracy is shown
    beside it), per seed and for the mean curve. Decided as d1: by the epoch from which Dropout is
    significantly above it at every later epoch (paired by seed); the mean curve's epochs are shown."""
    end = d["epochs"]
    kept_epoch = b["val_loss"].argmin(axis=1)
    kept = b["val_correct"][np.arange(len(kept_epoch)), kept_epoch]  # counts, per seed
    per_seed = [first_epoch(row) for row in d["val_correct"] > kept[:, None]]
    above = d["val_correct"].mean(axis=0) > kept.mean()  # the mean curve against the mean kept accuracy
    first, held = first_epoch(above), held_from(above)
    lost = first_epoch(~above[first:]) + first if first is not None and not above[first:].all() else None
    sig = ahead(d["val_correct"], np.broadcast_to(kept[:, None], d["val_correct"].shape))
    missing = sum(e is None for e in per_seed)
    pct = lambda counts: fmt(mean_ci(100 * counts / d["n_val"]), digits=2)  # noqa: E731
    curve = (f"does not pass the mean by epoch {end}" if first is None else f"passes the mean at epoch {first}" +
             (f", below it again at epoch {lost}" if lost else "") +
             (f", above it from epoch {held} through {end}" if held and held != first else "") +
             ("" if held else f", not above it at epoch {end}"))
    seeds = (f"at epoch {fmt(mean_ci(per_seed), total=len(per_seed))}" if missing < len(per_seed) else "in no seed")
    seeds += f", not by epoch {end} in {missing} of {len(per_seed)} seeds" if missing else ""
    return verdict("d2", "Dropout overtakes BaseLine at epoch 200–300, not before: Dropout's val accuracy passes "
                   "that of the checkpoint BaseLine keeps (its best-val-loss epoch)",
                   overtake_verdict(sig["from"], end),
                   f"BaseLine keeps epoch {fmt(mean_ci(kept_epoch + 1))} at {pct(kept)}% val accuracy (its best val "
                   f"accuracy: {pct(b['val_correct'].max(axis=1))}%); Dropout's mean curve {curve}; per seed it passes "
                   f"{seeds}; significantly above (paired by seed, Benjamini–Hochberg over {end} epochs) at every "
                   f"epoch from {sig['from'] or 'never'}", first=first, held_from=held, lost_at=lost,
                   per_seed=per_seed, significant_from=sig["from"])


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


def tutorial_claims(base_histories, drop_histories, why=None):
    """Every claim's verdict; a claim whose needed epoch the run did not reach is 'not judged', with
    that reason (`why`: what stopped the run) and what the epochs it reached show."""
    ext = extent(list(base_histories) + list(drop_histories))
    b, d = curves(base_histories, ext["reached"]), curves(drop_histories, ext["reached"])
    b["planned"] = d["planned"] = ext["planned"]
    out = []
    for claim_id, judge in CLAIMS.items():
        v = judge(b, d)
        if v is None:  # not measured by these runs
            continue
        needed = need(claim_id, ext["planned"])
        if needed > ext["reached"]:
            v["verdict"] = "not judged"
            v["evidence"] = f"{not_reached(needed, ext, why)}; epochs 1–{ext['reached']} show: {v['evidence']}"
        out.append(v)
    return out
