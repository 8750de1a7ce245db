"""The statistics behind the report's verdicts, over seeds (scipy.stats).

Conventions: accuracies are compared as exact counts of correctly classified validation images
(integers, so ties are ties); "significant" is one-sided p < ALPHA; per-epoch tests are corrected
across epochs with Benjamini-Hochberg. BaseLine and Dropout runs of the same seed start from the
same weights (the init does not depend on dropout) and see the same batches, so they are compared
as pairs; runs of two frameworks share nothing and are compared with Welch's test.
"""
import warnings

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
MIN_SEEDS = 2  # a test over seeds needs a spread: with one seed there is none


def mean_ci(values, level=0.95):
    """{'mean', 'ci95' (half-width of the t-interval), 'n'}; None entries (never reached) left out."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(v.mean()), "ci95": half, "n": int(len(v))}


def paired_greater(a, b):
    """One-sided p-value that a > b, for paired samples (rows: seeds; columns: epochs, optional).
    Where every pair has the same difference (t undefined) the answer is exact: 0 if all of them
    are above 0, 1 otherwise. NaN (no test) with fewer than MIN_SEEDS pairs, or where a value is NaN."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < MIN_SEEDS:
        return np.full(np.shape(d)[1:], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's "nearly identical" note: handled below
        p = np.asarray(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue, float)
    constant = np.isnan(p) | (np.ptp(d, axis=0) == 0)
    exact = np.where(constant, np.where(np.asarray(d).mean(axis=0) > 0, 0.0, 1.0), p)
    return np.where(np.isfinite(d).all(axis=0), exact, np.nan)


def bh(pvalues):
    """Benjamini-Hochberg adjusted p-values across the given tests (e.g. epochs); a NaN (no test) stays
    NaN and is not counted among the tests."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    tested = np.isfinite(p)
    if tested.any():
        out[tested] = stats.false_discovery_control(p[tested], method="bh")
    return out


def ahead(a_counts, b_counts):
    """Where run group A (rows: seeds, columns: epochs; integer counts) is ahead of paired group B.

    Returns {'first': first epoch (1-based) A is significantly ahead after BH correction,
    'from': first epoch from which A is significantly ahead at every later epoch,
    'share_after_first': share of the epochs after 'first' where it is (None: none after it), 'mean_crossings':
    epochs where the summed counts change order (exact integers; ties are ties)}."""
    a, b = np.asarray(a_counts), np.asarray(b_counts)
    significant = bh(paired_greater(a, b)) < ALPHA
    hits = np.flatnonzero(significant)
    first = int(hits[0]) + 1 if len(hits) else None
    from_epoch = held_from(significant)
    after = significant[first:] if first else []  # the epochs after the first, not the first itself
    share = float(np.mean(after)) if len(after) else None
    return {"first": first, "from": from_epoch, "share_after_first": share,
            "mean_crossings": sign_changes(a.sum(axis=0) - b.sum(axis=0))}


def held_from(mask):
    """1-based first epoch from which `mask` holds at every later epoch, or None (it fails at the last)."""
    mask = np.asarray(mask, bool)
    fails = np.flatnonzero(~mask)
    start = 0 if len(fails) == 0 else int(fails[-1]) + 1
    return start + 1 if start < mask.size else None


def slopes(values):
    """Least-squares slope of each row (a seed) against its column index (epochs): unlike a value
    minus its minimum, it can come out negative, so a test of it can fail."""
    v = np.asarray(values, float)
    x = np.arange(v.shape[-1]) - (v.shape[-1] - 1) / 2
    return (v * x).sum(axis=-1) / (x ** 2).sum()


def sign_changes(diff):
    """1-based epochs where an integer difference changes sign (ties skipped, not counted as a side)."""
    sides = [(i + 1, np.sign(d)) for i, d in enumerate(diff) if d != 0]
    return [e for (e, s), (_, prev) in zip(sides[1:], sides) if s != prev]


def tost(a, b, margin):
    """Equivalence of two independent samples within +-margin (two one-sided Welch tests).
    Returns {'diff' (mean a - mean b), 'ci90': (low, high) of the difference, 'p': the larger of
    the two one-sided p-values, 'equivalent': p < ALPHA (the 90% CI lies inside +-margin),
    'different': a two-sided Welch test rejects equality at ALPHA, 'beyond': the 90% CI lies
    wholly outside +-margin (the difference is larger than the margin, one-sided at ALPHA), 'p_beyond'
    its p-value}. Uncorrected: a table of them corrects all three alike (benchmarks.report.equivalence)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    diff = a.mean() - b.mean()
    if se == 0:
        p_low = p_high = 0.0 if abs(diff) < margin else 1.0
        p_two = 0.0 if diff else 1.0
        p_beyond = 0.0 if abs(diff) > margin else 1.0
    else:
        p_low = stats.t.sf((diff + margin) / se, df)    # H0: diff <= -margin
        p_high = stats.t.cdf((diff - margin) / se, df)  # H0: diff >= +margin
        p_two = 2 * stats.t.sf(abs(diff) / se, df)
        p_beyond = stats.t.sf((abs(diff) - margin) / se, df)  # H0: |diff| <= margin, on the observed side
    half = stats.t.ppf(1 - ALPHA, df) * se
    p = float(max(p_low, p_high))
    low, high = float(diff - half), float(diff + half)
    return {"diff": float(diff), "ci90": (low, high), "p": p, "equivalent": p < ALPHA,
            "p_two": float(p_two), "different": float(p_two) < ALPHA, "beyond": low > margin or high < -margin,
            "p_beyond": float(p_beyond), "margin": margin}


def smallest_detectable(differences, power=0.8):
    """The smallest mean of paired differences a one-sided paired t-test at ALPHA over these seeds
    detects with the given power, if their spread were the observed one (noncentral t); None under
    MIN_SEEDS or without spread."""
    d = np.asarray(differences, float)
    n, sd = len(d), (d.std(ddof=1) if len(d) >= MIN_SEEDS else 0.0)
    if n < MIN_SEEDS or not sd > 0:
        return None
    crit = stats.t.ppf(1 - ALPHA, n - 1)
    shift = optimize.brentq(lambda nc: stats.nct.sf(crit, n - 1, nc) - power, 0.0, 50.0)
    return float(shift * sd / np.sqrt(n))


def median_epoch(epochs, end):
    """Kaplan-Meier median of the epoch at which each seed gets somewhere (None: not by epoch `end`,
    counted as not yet there, censored at `end`); None when fewer than half got there."""
    got = [e for e in epochs if e is not None]
    if not got:
        return None
    sf = stats.ecdf(stats.CensoredData(uncensored=got, right=[end] * (len(epochs) - len(got)))).sf
    below = np.flatnonzero(sf.probabilities <= 0.5)
    return int(sf.quantiles[below[0]]) if len(below) and sf.quantiles[below[0]] <= max(got) else None


def seeds_for_equivalence(a, b, margin, power=0.8):
    """Seeds per side that a TOST at ALPHA would need to show equivalence with the given power, if
    the true difference and spread were the observed ones (normal approximation); None when the
    observed difference is at or beyond the margin (more seeds would not show equivalence) or a value
    is not a number."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    gap = margin - abs(a.mean() - b.mean())
    if not gap > 0 or not np.isfinite(a.var(ddof=1) + b.var(ddof=1)):
        return None
    var = a.var(ddof=1) + b.var(ddof=1)
    z = stats.norm.ppf(1 - ALPHA) + stats.norm.ppf(power)
    return max(2, int(np.ceil(var * z ** 2 / gap ** 2)))
