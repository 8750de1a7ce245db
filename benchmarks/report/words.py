"""The words the report's sentences are made of, chosen by the outcome (none, negative, all, some), so
that no sentence reads "rises by -0.3", "first never", "at epochs none" or "in not every seed"."""
import math

NOT_A_NUMBER = "not a number"


def amount(stat, digits, unit=""):
    """'|mean| ± ci' (the sign is said by the word around it)."""
    s = f"{abs(stat['mean']):.{digits}f}{unit}"
    return s + (f" ± {stat['ci95']:.{digits}f}" if stat["ci95"] is not None else "")


def finite(stat):
    return stat["mean"] is not None and math.isfinite(stat["mean"])


def change(stat, digits, unit=""):
    """'rises by X' / 'falls by X' / 'does not change (0 ± ci)' for a mean change."""
    if not finite(stat):
        return f"changes by {NOT_A_NUMBER}"
    if stat["mean"] == 0:
        return f"does not change ({amount(stat, digits, unit)})"
    return f"{'rises' if stat['mean'] > 0 else 'falls'} by {amount(stat, digits, unit)}"


def lead(stat, first, second, what, digits):
    """Who leads by how much, for a mean difference `first` − `second`."""
    if not finite(stat):
        return f"the lead is {NOT_A_NUMBER}"
    if stat["mean"] == 0:
        return f"neither leads ({amount(stat, digits)} {what})"
    return f"{first if stat['mean'] > 0 else second} leads by {amount(stat, digits)} {what}"


def seeds_with(k, n):
    """'in every seed' / 'in no seed' / 'in k of n seeds'."""
    return "in every seed" if k == n else "in no seed" if k == 0 else f"in {k} of {n} seeds"


def count_of(k, n, noun="seeds"):
    """'all n seeds' / 'no seed' / 'k of n seeds' (the subject of a sentence)."""
    return f"all {n} {noun}" if k == n and n > 1 else f"no {noun[:-1]}" if k == 0 else f"{k} of {n} {noun}"


def at_epochs(epochs):
    """'at epoch 35' / 'at epochs 35, 37' / 'never'."""
    if not epochs:
        return "never"
    return f"at epoch{'s' if len(epochs) > 1 else ''} {', '.join(map(str, epochs))}"


def fmt(stat, scale=1.0, digits=1, unit="", total=None):
    """'mean ± ci'; with `total`, says how many seeds the mean is over when some never got there."""
    if stat["mean"] is None:
        return "never"
    if not math.isfinite(stat["mean"]):
        return NOT_A_NUMBER
    s = f"{scale * stat['mean']:.{digits}f}{unit}"
    s += f" ± {scale * stat['ci95']:.{digits}f}" if stat["ci95"] is not None else ""
    return s + (f" ({stat['n']} of {total} seeds)" if total is not None and stat["n"] < total else "")


def p_text(p):
    """A p-value as the report prints it; NaN (too few seeds, or a value not a number) is no test."""
    if p is None or not math.isfinite(p):
        return "no test"
    return f"p = {p:.2g}" if p >= 1e-4 else "p < 1e-4"
