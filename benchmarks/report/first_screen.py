"""REPORT.md's first screen: five lines that answer what a reader came for (is Flax faster, do the
frameworks agree, how much Dropout slows convergence, what of the tutorial holds, which checkpoint
to ship), each from the same numbers the sections below print in full."""
from benchmarks.report.claims import fmt
from benchmarks.report.equivalence import VERDICTS
from benchmarks.report.shipped import shipped
from benchmarks.report.speed_table import fastest_torch

SHORT = {"a1": "BaseLine overfits", "a2": "its val accuracy peaks near epoch 50",
         "a3": "BaseLine still ahead at the end", "b": "Dropout removes the overfitting",
         "c1": "Dropout slows the train loss (train mode)", "c1e": "Dropout slows the train loss (eval mode)",
         "c2": "Dropout slows the val loss",
         "d1": "Dropout overtakes at 200–300 (curves cross)", "d2": "Dropout passes BaseLine's kept checkpoint at 200–300"}


def ratio_range(ratios):
    return f"{min(ratios):.2f}×" if len(set(ratios)) == 1 else f"{min(ratios):.2f}–{max(ratios):.2f}×"


def speed_line(rows, machine):
    """Flax against the fastest PyTorch measured at the same model, batch, lanes and precision."""
    if not rows:
        return "**Is Flax faster?** Not measured in this report."
    measured = [r for r in rows if not r.get("skipped")]
    best, by_lanes = fastest_torch(measured), {}
    for r in measured:
        ref = best.get((r["model"], r["batch"], r["seeds"], r["precision"]))
        if r["framework"] == "flax" and ref:
            by_lanes.setdefault(r["seeds"], []).append(r["img_per_s"] / ref["img_per_s"])
    if not by_lanes:
        return "**Is Flax faster?** No Flax row has a PyTorch row at the same settings to compare with."
    parts = [f"{ratio_range(v)} with {n} lane{'s' if n > 1 else ''}" for n, v in sorted(by_lanes.items())]
    return (f"**Is Flax faster?** Against the fastest PyTorch engine at the same model, batch size, lanes and "
            f"precision, measured side by side on {machine}: " + "; ".join(parts) + " (1× = as fast; *Speed* below).")


def agreement_line(rows, seeds):
    """The equivalence table in plain words."""
    if not rows:
        return "**Do the frameworks agree?** Not tested here (one framework)."
    count = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    found = count["not equivalent"] + count["differs, within margin not shown"]
    said = (f"a difference in {found} of {len(rows)} comparisons" if found else
            f"no difference in any of {len(rows)} comparisons (val accuracy, train and val loss at set epochs)")
    return (f"**Do the frameworks agree?** Over {seeds} seeds each, the tests found {said}; "
            f"{count['equivalent']} of them are shown equivalent within their margins (±1 point of accuracy, ±0.03 "
            f"train loss, ±3% val loss). 'Equivalent' needs the whole 90% interval inside the margin; the others "
            f"are 'not shown': these seeds cannot tell either way (*Do the frameworks agree?* below).")


def slowdown_line(claims, conv):
    """c2's numbers and the epochs each model needs to reach set accuracies, per framework."""
    parts = []
    for fw, cs in claims.items():
        c2 = next(c for c in cs if c["id"] == "c2")
        n = c2["numbers"]
        ratios = ", ".join(f"{r:.1f}× to {k[-2:]}%" for k, r in conv[fw]["slowdown_dropout_over_baseline"].items() if r)
        parts.append(f"{fw}: val loss after 10 epochs {fmt(n['baseline'], digits=3)} (BaseLine) vs "
                     f"{fmt(n['dropout'], digits=3)} (Dropout), {c2['verdict']}; epochs needed, Dropout over "
                     f"BaseLine: {ratios or 'not reached'}")
    return "**How much does Dropout slow convergence?** " + "; ".join(parts) + "."


def tutorial_line(claims):
    """Each claim's verdict, with where the frameworks disagree; a claim only some frameworks' runs
    measured (c1e, with --eval-train) names those that did."""
    fws = list(claims)
    by_fw = {fw: {c["id"]: c["verdict"] for c in claims[fw]} for fw in fws}
    ids = list(dict.fromkeys(c["id"] for fw in fws for c in claims[fw]))
    said = []
    for i in ids:
        v = {fw: by_fw[fw][i] for fw in fws if i in by_fw[fw]}
        one = len(set(v.values())) == 1 and len(v) == len(fws)
        said.append(f"{SHORT.get(i, i)}: " + (next(iter(v.values())) if one else
                                              " / ".join(f"{fw} {x}" for fw, x in v.items())))
    return "**What of the tutorial holds?** " + "; ".join(said) + " (*The tutorial's claims* below)."


def shipped_line(conv, frameworks):
    parts = []
    for fw in frameworks:
        s = shipped(conv[fw]["per_seed"])
        if s:
            parts.append(f"{fw}: Dropout − BaseLine test accuracy {fmt(s['lead'], digits=2)} points "
                         f"({s['seeds']} seeds)")
    return ("**Which checkpoint to ship?** The best-val-loss checkpoints on the test set: " + "; ".join(parts) + "."
            if parts else "**Which checkpoint to ship?** No checkpoint was tested.")


def first_screen(claims, conv, frameworks, equivalence_rows, speed_rows=None, speed_machine=""):
    """The five lines, as Markdown bullets, under 'In short'."""
    seeds = min(len(conv[fw]["seeds"]) for fw in frameworks)
    return ["## In short", "",
            f"- {speed_line(speed_rows, speed_machine)}",
            f"- {agreement_line(equivalence_rows, seeds)}",
            f"- {slowdown_line(claims, conv)}",
            f"- {tutorial_line(claims)}",
            f"- {shipped_line(conv, frameworks)}", ""]
