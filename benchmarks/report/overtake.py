"""Claim d: Dropout overtakes BaseLine at epoch 200-300, not before (the tutorial's guess, from a BaseLine
still ahead at 100), read two ways:

    d1  the curves cross: from which epoch Dropout's val accuracy is significantly above BaseLine's at
        every later epoch (paired by seed, Benjamini-Hochberg over the epochs);
    d2  Dropout's val accuracy passes that of the checkpoint BaseLine keeps (its best-val-loss epoch, as
        the tutorial keeps best_ckpt.pth). Its primary reading is one test stated before looking: Dropout
        above that accuracy at the planned end (at most 300; for a run through the tutorial's window, also
        at epoch 199, just before it). The every-epoch reading of d1 is shown beside it, as the stronger one.

Either refutes 'not before 200' once Dropout is ahead before 200; any other outcome waits for the
planned end (claim_rules.WAITS).
"""
import numpy as np

from benchmarks.report.claim_rules import OVERTAKE, verdict, waits
from benchmarks.report.stats import ALPHA, ahead, held_from, mean_ci, median_epoch, paired_greater
from benchmarks.report.words import amount, at_epochs, count_of, fmt, p_text

D_CLAIM = "Dropout overtakes BaseLine at epoch 200–300, not before"


def overtake_verdict(from_epoch, reached, planned):
    """The every-epoch reading: `from_epoch`, the epoch from which Dropout is significantly ahead at every
    epoch through `reached` (None: not ahead there). None: the outcome waits for the planned end."""
    if from_epoch is not None and from_epoch < OVERTAKE[0]:
        return "refuted"  # ahead before 200, and still ahead at the last epoch reached
    if reached < waits(planned):
        return None
    if from_epoch is None:
        return "refuted" if reached >= OVERTAKE[1] else "undecided"
    return "confirmed" if from_epoch <= OVERTAKE[1] else "refuted"


def significantly(sig, end, what="ahead"):
    """The every-epoch reading in words, for each outcome."""
    if sig["first"] is None:
        return f"significantly {what} at no epoch"
    if sig["from"] is None:
        return f"significantly {what} first at epoch {sig['first']}, but not at epoch {end}"
    return f"significantly {what} first at epoch {sig['first']} and at every epoch from {sig['from']} on"


def overtakes(b, d):
    a = ahead(d["val_correct"], b["val_correct"])
    end = b["epochs"]
    crossings = a["mean_crossings"]
    share = f"; ahead at {100 * a['share_after_first']:.0f}% of the epochs after the first" \
        if a["share_after_first"] is not None else ""
    order = "never change order" if not crossings else f"change order {at_epochs(crossings)}"
    return verdict("d1", f"{D_CLAIM}: the curves cross", overtake_verdict(a["from"], end, b["planned"]),
                   f"Dropout is {significantly(a, end)} (paired by seed, Benjamini–Hochberg over {end} epochs)"
                   f"{share}; the summed correct counts {order}", waits=waits(b["planned"]), **a)


def states(counts, kept):
    """Per epoch, Dropout's counts against the kept ones: +1 above by more than its noise, -1 below by
    more than its noise (a paired one-sided test at that epoch, uncorrected), 0 level."""
    target = np.broadcast_to(kept[:, None], counts.shape)
    above = paired_greater(counts, target) < ALPHA
    below = paired_greater(target, counts) < ALPHA
    return np.where(above, 1, np.where(below, -1, 0))


NOISE = "by more than its noise"
STATE_WORDS = {1: f"above it {NOISE}", 0: "level with it", -1: "below it"}


def during(start, end):
    return f"at epoch {end}" if start == end else f"from epoch {start} through {end}"


def mean_curve(s, end):
    """How Dropout's curve stands against the kept accuracy epoch by epoch, in words for each outcome."""
    first_level, first_above = (int(np.argmax(s >= k)) + 1 if np.any(s >= k) else None for k in (0, 1))
    if first_level is None:
        return f"is below it at every epoch through {end}"
    now, since = int(s[-1]), held_from(s == s[-1])
    parts = [f"is below it through epoch {first_level - 1}"] if first_level > 1 else []
    if now == 1 and first_above == since:
        return ", ".join(parts + [f"{'and ' if parts else ''}is above it {NOISE} {during(since, end)}"])
    parts.append(f"is first above it {NOISE} at epoch {first_above}" if first_above else f"is never above it {NOISE}")
    return ", ".join(parts + [f"and is {STATE_WORDS[now]} at epoch {end}" + (f" (since epoch {since})"
                                                                            if since < end else "")])


def per_seed(passed, end):
    """How many seeds passed by `end` and the median epoch, the others counted as not yet (Kaplan-Meier)."""
    k, n = sum(e is not None for e in passed), len(passed)
    median = median_epoch(passed, end)
    said = f"{count_of(k, n)} {'passes' if k == 0 else 'pass'} it by epoch {end}"
    if k == 0:
        return said
    how = f"Kaplan–Meier: a seed that has not passed counts as not yet at epoch {end}"
    return said + (f"; median epoch {median} ({how})" if median is not None else f"; median: not by epoch {end} "
                                                                                  f"(fewer than half passed; {how})")


def side(stat, above, below):
    """'above it by X' / 'below it by X' as a test decided, else 'level with it (+X ± ci)'."""
    if above or below:
        return f"{'above' if above else 'below'} it by {amount(stat, 2)}"
    return f"level with it ({stat['mean']:+.2f}" + (f" ± {stat['ci95']:.2f}" if stat["ci95"] is not None else "")


def primary(d, kept, planned):
    """The pre-stated test at the planned end (and at epoch 199 for a run through 200-300): its verdict
    (None: waits for the planned end), its p-value at the end and its words."""
    end = waits(planned)
    if d["epochs"] < end:
        return None, None, f"the pre-stated test at epoch {end}, the planned end, waits for it"
    epochs = ([OVERTAKE[0] - 1] if end >= OVERTAKE[0] else []) + [end]
    said, above = [], {}
    for e in epochs:
        diff = 100 * (d["val_correct"][:, e - 1] - kept) / d["n_val"]
        p_up, p_down = float(paired_greater(diff, 0 * diff)), float(paired_greater(0 * diff, diff))
        above[e] = p_up < ALPHA
        what = "the planned end, the pre-stated test" if e == end else "just before the window"
        worded = side(mean_ci(diff), above[e], p_down < ALPHA)
        said.append(f"at epoch {e} ({what}) Dropout is {worded} points{')' if '(' in worded else ''} "
                    f"(Dropout above: {p_text(p_up)})")
    if above[epochs[0]] and epochs[0] < OVERTAKE[0]:
        result = "refuted"  # above before 200
    elif end < OVERTAKE[0]:
        result = "undecided"  # the run ends before the window
    else:
        result = "confirmed" if above[end] else "refuted" if end >= OVERTAKE[1] else "undecided"
    return result, float(paired_greater(d["val_correct"][:, end - 1], kept)), "; ".join(said)


def passes_kept(b, d):
    """d2: the primary reading (the pre-stated test at the planned end) decides; the mean curve, the
    seeds and the every-epoch reading (as d1's, against the kept accuracy) are shown beside it."""
    end = d["epochs"]
    kept_epoch = b["val_loss"].argmin(axis=1)
    kept = b["val_correct"][np.arange(len(kept_epoch)), kept_epoch]  # counts, per seed
    passed = [int(np.argmax(row)) + 1 if row.any() else None for row in d["val_correct"] > kept[:, None]]
    sig = ahead(d["val_correct"], np.broadcast_to(kept[:, None], d["val_correct"].shape))
    every_epoch = overtake_verdict(sig["from"], end, d["planned"])
    result, p_end, said = primary(d, kept, d["planned"])
    if result is None and every_epoch == "refuted":
        result = "refuted"  # significantly above at every epoch from one before 200: no need to wait
    pct = lambda counts: fmt(mean_ci(100 * counts / d["n_val"]), digits=2)  # noqa: E731
    return verdict("d2", f"{D_CLAIM}: Dropout's val accuracy passes that of the checkpoint BaseLine keeps (its "
                   "best-val-loss epoch)", result,
                   f"BaseLine keeps epoch {fmt(mean_ci(kept_epoch + 1))} at {pct(kept)}% val accuracy (its best val "
                   f"accuracy: {pct(b['val_correct'].max(axis=1))}%); {said}; epoch by epoch (a paired test at each "
                   f"epoch, uncorrected) Dropout's mean curve {mean_curve(states(d['val_correct'], kept), end)}; "
                   f"per seed, {per_seed(passed, end)}; every epoch (the stronger reading, paired by seed, "
                   f"Benjamini–Hochberg over {end} epochs): {significantly(sig, end, 'above it')}: "
                   f"{every_epoch or 'waits for epoch ' + str(waits(d['planned']))}",
                   p_end=p_end, tested_at=waits(d["planned"]), every_epoch=every_epoch, per_seed=passed,
                   significant_from=sig["from"], waits=waits(d["planned"]))
