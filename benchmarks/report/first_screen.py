"""REPORT.md's first screen: five lines that answer what a reader came for (is Flax faster, do the
frameworks agree, how much Dropout slows convergence, what of the tutorial holds, which checkpoint
to ship), each from the same numbers the sections below print in full, and each saying only what
those sections prove."""
import math
from dataclasses import dataclass

from benchmarks.report.claim_rules import OVERTAKE
from benchmarks.report.equivalence import VERDICTS
from benchmarks.report.margins import EQUIV_TRAIN_LOSS, EQUIV_VAL_ACC_POINTS, EQUIV_VAL_LOSS_RELATIVE
from benchmarks.report.shipped import shipped
from benchmarks.report.speed_table import fastest_way
from benchmarks.report.stats import ALPHA, MIN_SEEDS
from benchmarks.report.words import fmt, p_text

SHORT = {"a1": "BaseLine overfits", "a2": "its val accuracy peaks near epoch 50",
         "a3": "BaseLine still ahead at epoch {needs}", "b": "Dropout removes the overfitting",
         "c1": "Dropout slows the train loss (train mode)", "c1e": "Dropout slows the train loss (eval mode)",
         "c2": "Dropout slows the val loss",
         "d1": "Dropout overtakes at 200–300 (curves cross)", "d2": "Dropout passes BaseLine's kept checkpoint at 200–300"}
FROM_EVAL_TRAIN = "eval-train"  # a claim's `source` when it was judged on the --eval-train runs


@dataclass
class Findings:
    """What the first screen says, computed by build.py."""
    claims: dict                # {framework: tutorial_claims of its main runs}
    conv: dict                  # convergence.json
    frameworks: list
    rows: list                  # the equivalence table's rows ([] when not tested)
    speed: dict | None = None   # speed.json
    machine: str = ""           # where the speed rows were measured


def ratio_range(ratios):
    same = len({f"{r:.2f}" for r in ratios}) == 1
    return f"{min(ratios):.2f}×" if same else f"{min(ratios):.2f}–{max(ratios):.2f}×"


def lanes_pay(measured):
    """Per framework, its n-lane rows' model-images/s over its fastest single lane's at the same settings."""
    out = {}
    for fw, name in (("flax", "Flax"), ("torch", "PyTorch")):
        single = {}
        for r in measured:
            key = (r["model"], r["batch"], r["precision"])
            if r["framework"] == fw and r["seeds"] == 1 and r["img_per_s"] > single.get(key, 0):
                single[key] = r["img_per_s"]
        for r in measured:
            key = (r["model"], r["batch"], r["precision"])
            if r["framework"] == fw and r["seeds"] > 1 and key in single:
                out.setdefault(r["seeds"], {}).setdefault(name, []).append(r["img_per_s"] / single[key])
    return out


def speed_line(rows, machine):
    """Flax against the fastest way PyTorch trains as many models at the same model, batch and precision:
    its own lanes, or one model after the other, whichever was faster there."""
    if not rows:
        return "**Is Flax faster?** Not measured in this report."
    measured = [r for r in rows if not r.get("skipped")]
    best, by_lanes, ways = fastest_way(measured), {}, {}
    for r in measured:
        ref = best.get((r["model"], r["batch"], r["seeds"], r["precision"]))
        if r["framework"] == "flax" and ref:
            by_lanes.setdefault(r["seeds"], []).append(r["img_per_s"] / ref["img_per_s"])
            ways.setdefault(r["seeds"], {}).setdefault(ref["seeds"] != r["seeds"], {})[ref["variant"]] = None
    if not by_lanes:
        return "**Is Flax faster?** No Flax row has a PyTorch row at the same settings to compare with."
    parts = [f"{ratio_range(v)} with {n} lane{'s' if n > 1 else ''}" for n, v in sorted(by_lanes.items())]
    refs = [f"for {n} lanes, PyTorch's fastest is " + " or ".join(
        f"{'one model after the other' if one_by_one else 'its lanes'} ({' or '.join(names)})"
        for one_by_one, names in sorted(ways[n].items(), reverse=True)) for n in sorted(ways) if n > 1]
    slower = [f"{n} lanes train fewer model-images/s than one lane: " + ", ".join(
        f"{fw} {ratio_range(v)}" for fw, v in per_fw.items() if max(v) < 1)
        for n, per_fw in sorted(lanes_pay(measured).items())
        if n in by_lanes and any(max(v) < 1 for v in per_fw.values())]
    return (f"**Is Flax faster?** Against the fastest way PyTorch trains as many models at the same model, batch "
            f"size and precision (its own lanes, or one model after the other), measured side by side on {machine}: "
            + "; ".join(parts) + " (1× = as fast" + "".join(f"; {r}" for r in refs) + "; *Speed* below)."
            + (f" On {machine}, " + "; ".join(slower) + "." if slower else ""))


def inside_margin(r):
    """Whether a row's whole 90% interval lies inside its margin, before any correction."""
    return -r["margin"] < r["ci90"][0] and r["ci90"][1] < r["margin"]


def agreement_line(rows, seeds):
    """The equivalence table in plain words, with the rule it applied."""
    if seeds < MIN_SEEDS:
        return (f"**Do the frameworks agree?** Not tested: {seeds} seed per framework, and a test over seeds needs "
                f"at least {MIN_SEEDS}.")
    if not rows:
        return "**Do the frameworks agree?** Not tested here (one framework)."
    n = len(rows)
    count = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    found = count["not equivalent"] + count["differs, within margin not shown"]
    said = (f"a difference in {found} of {n} comparisons" if found else
            f"no difference in any of {n} comparisons (val accuracy, train and val loss at set epochs)")
    inside = sum(r["verdict"] != "equivalent" and r.get("ci90") is not None and inside_margin(r) for r in rows)
    more = "more " if count["equivalent"] else ""
    before = (f"{inside} {more}of the {n} have their whole 90% interval inside the margin, but not after the correction"
              if inside else "no other row has its whole 90% interval inside the margin" if count["equivalent"] else
              "none has its whole 90% interval inside the margin even before it")
    return (f"**Do the frameworks agree?** Over {seeds} seeds each, the tests found {said}; "
            f"{count['equivalent']} of them are shown equivalent within their margins "
            f"(±{EQUIV_VAL_ACC_POINTS:g} point of accuracy, ±{EQUIV_TRAIN_LOSS:g} train loss, "
            f"±{100 * EQUIV_VAL_LOSS_RELATIVE:g}% val loss). "
            f"'Equivalent' needs both one-sided tests (TOST) to pass after the Benjamini–Hochberg correction across "
            f"the {n} comparisons; {before}; the others are 'not shown': these seeds cannot tell either way "
            "(*Do the frameworks agree?* below).")


def slowdown_line(claims, conv):
    """c2's numbers and the epochs each model needs to reach set accuracies, per framework."""
    parts = []
    for fw, cs in claims.items():
        c2 = next(c for c in cs if c["id"] == "c2")
        n = c2["numbers"]
        ratios = ", ".join(f"{r:.1f}× to {k[-2:]}%" for k, r in conv[fw]["slowdown_dropout_over_baseline"].items()
                           if r and math.isfinite(r))
        if not n:
            parts.append(f"{fw}: val loss {c2['why']}")
            continue
        parts.append(f"{fw}: val loss after {n['epoch']} epochs {fmt(n['baseline'], digits=3)} (BaseLine) vs "
                     f"{fmt(n['dropout'], digits=3)} (Dropout), {c2['verdict']}; epochs needed, Dropout over "
                     f"BaseLine: {ratios or 'not reached'}")
    return "**How much does Dropout slow convergence?** " + "; ".join(parts) + "."


def when(claim_id, by_fw):
    """What the first screen adds to d's verdict: from which epoch Dropout is ahead (d1), or that the
    pre-stated test found it above the kept checkpoint at the planned end (d2)."""
    if claim_id == "d1":
        froms = [(fw, c["numbers"].get("from")) for fw, c in by_fw.items() if c["verdict"] == "refuted"]
        froms = [(fw, e) for fw, e in froms if e is not None and e < OVERTAKE[0]]
        return (": Dropout is significantly ahead from epoch " + " and ".join(f"{e} ({fw})" for fw, e in froms)
                + " on") if froms else ""
    if claim_id == "d2":
        above = [(fw, c["numbers"]["p_end"]) for fw, c in by_fw.items()
                 if c["verdict"] == "refuted" and (c["numbers"].get("p_end") or 1) < ALPHA]
        return "".join(f" ({fw}: Dropout above it at epoch {by_fw[fw]['numbers']['tested_at']}, the planned end, "
                       f"{p_text(p)})" for fw, p in above)
    return ""


def label(claim_id, by_fw):
    from_eval = any(c.get("source") == FROM_EVAL_TRAIN for c in by_fw.values())
    text = SHORT.get(claim_id, claim_id)
    if "{needs}" in text:  # a3: the tutorial's epoch 100, or the run's planned end if sooner
        text = text.replace("{needs}", " / ".join(dict.fromkeys(str(c["needs_epoch"]) for c in by_fw.values())))
    return text.replace("(eval mode)", "(eval mode, the --eval-train runs)" if from_eval else "(eval mode)")


def tutorial_line(claims):
    """Each claim's verdict, with where the frameworks disagree; a claim only some frameworks' runs
    measured (c1e, with --eval-train) names those that did; d says when Dropout overtook."""
    fws = list(claims)
    by_id = {}
    for fw in fws:
        for c in claims[fw]:
            by_id.setdefault(c["id"], {})[fw] = c
    whys = {c.get("why") if c["verdict"] == "not judged" else None for cs in claims.values() for c in cs}
    if len(whys) == 1 and None not in whys and "seed" in next(iter(whys)):
        return (f"**What of the tutorial holds?** Every claim is not judged ({next(iter(whys))[len('not judged: '):]})"
                " (*The tutorial's claims* below).")
    said = []
    for i, by_fw in by_id.items():
        v = {fw: c["verdict"] for fw, c in by_fw.items()}
        one = len(set(v.values())) == 1 and len(v) == len(fws)
        said.append(f"{label(i, by_fw)}: " + (next(iter(v.values())) if one else
                                              " / ".join(f"{fw} {x}" for fw, x in v.items())) + when(i, by_fw))
    return "**What of the tutorial holds?** " + "; ".join(said) + " (*The tutorial's claims* below)."


def shipped_part(fw, s):
    """One framework's answer: the difference with its p-value, the conclusion, what each checkpoint
    cost in epochs, and the smallest difference these seeds could have detected."""
    lead = s["lead"]
    head = (f"{fw}: Dropout − BaseLine test accuracy {lead['mean']:+.2f}" + (f" ± {lead['ci95']:.2f}" if lead["ci95"]
                                                                               is not None else "")
            + f" points ({s['seeds']} seed{'s' if s['seeds'] > 1 else ''}; Dropout better: {p_text(s['p_dropout'])})")
    if s["seeds"] < MIN_SEEDS:
        return f"{head}: not judged ({s['seeds']} seed: a test over seeds needs at least {MIN_SEEDS})"
    said = ("Dropout's checkpoint tests better" if s["p_dropout"] < ALPHA else
            f"BaseLine's checkpoint tests better ({p_text(s['p_baseline'])})" if s["p_baseline"] < ALPHA else
            "no difference shown")
    cost = s["epochs"]
    said += (f"; Dropout's checkpoint comes from epoch {cost['dropout']:.1f}, BaseLine's from {cost['baseline']:.1f} "
             f"({cost['dropout'] / cost['baseline']:.1f}× later)" if cost else "")
    detect = s["detectable"]
    return head + ": " + said + (f"; {s['seeds']} seeds detect a difference of {detect:.2f} points or more (80% "
                                 "power, one-sided 5%)" if detect is not None else "")


def shipped_line(conv, frameworks):
    parts = [shipped_part(fw, s) for fw in frameworks for s in [shipped(conv[fw]["per_seed"])] if s]
    return ("**Which checkpoint to ship?** The best-val-loss checkpoints on the test set: " + "; ".join(parts) + "."
            if parts else "**Which checkpoint to ship?** No checkpoint was tested.")


def first_screen(found):
    """The five lines, as Markdown bullets, under 'In short'."""
    seeds = min(len(found.conv[fw]["seeds"]) for fw in found.frameworks)
    speed_rows = found.speed and found.speed["rows"]
    return ["## In short", "",
            f"- {speed_line(speed_rows, found.machine)}",
            f"- {agreement_line(found.rows, seeds)}",
            f"- {slowdown_line(found.claims, found.conv)}",
            f"- {tutorial_line(found.claims)}",
            f"- {shipped_line(found.conv, found.frameworks)}", ""]
