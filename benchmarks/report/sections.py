"""The report's sections on the claims, the frameworks' equivalence and the device run's steps, as
Markdown lines, from what build.py computed."""
import json

import numpy as np

from benchmarks.report.equivalence import unreached, verdicts_in
from benchmarks.report.equivalence import table as equivalence_table
from benchmarks.report.extent import of
from benchmarks.report.provenance import mixes, pairs_mixed
from benchmarks.report.claim_rules import EARLY_EPOCH, OVERTAKE, TUTORIAL_END
from benchmarks.report.stats import ALPHA, MIN_SEEDS, tost
from benchmarks.report.words import NOT_A_NUMBER
from experiment.history import column


def claims_section(hs, claims, exts, peers=(), settled=None):
    """claims[framework]: tutorial_claims of its histories hs[framework]; settled[framework]: a sentence on
    its pairs that --eval-train runs repeat bit for bit (eval_train.settled)."""
    md = ["## The tutorial's claims, part by part", "",
          "Each claim split into its parts, each part with its own verdict (benchmarks/report/claims.py). Tests are "
          f"one-sided at the {100 * ALPHA:.0f}% level over seeds; BaseLine and Dropout runs of one seed start from "
          "the same weights and batches and are compared as pairs; accuracies as exact counts of correct "
          "validation images; per-epoch tests corrected across epochs with Benjamini–Hochberg. "
          f"Mean ± 95% CI. A claim is judged once the run reached the epoch it needs, whatever the run planned "
          f"(benchmarks/report/claim_rules.py NEEDS): a1, a3 and b are about the tutorial's epoch {TUTORIAL_END} and "
          f"are judged there, c1 and c2 at epoch {EARLY_EPOCH}; a run that stopped before gets 'not judged', and so "
          f"do runs of fewer than {MIN_SEEDS} seeds and values that are not a number. Claim d is read two ways: d1, "
          "the curves cross; d2, Dropout's val accuracy passes that of the checkpoint BaseLine keeps (its "
          "best-val-loss epoch, as the tutorial keeps best_ckpt.pth; not its best val accuracy, shown beside it). "
          f"d2's primary reading is one test stated before looking: Dropout above it at the planned end (at most "
          f"{OVERTAKE[1]}; for a run through {OVERTAKE[0]}–{OVERTAKE[1]} also at epoch {OVERTAKE[0] - 1}, just "
          "before the window); beside it, d1's every-epoch reading, the stronger one: the epoch from which Dropout "
          f"is significantly above it at every later epoch. Either refutes 'not before {OVERTAKE[0]}' once Dropout "
          f"is ahead before {OVERTAKE[0]} through the epochs reached; any other outcome of d waits for the planned "
          "end.", ""]
    for fw in claims:
        mixed = [x for x in (mixes(f"{fw}'s paired tests", hs[fw]["baseline"] + hs[fw]["dropout"], peers),
                             pairs_mixed(f"{fw}'s pairs", hs[fw]["baseline"], hs[fw]["dropout"]),
                             (settled or {}).get(fw)) if x]
        md += [f"**{fw}** ({len(hs[fw]['baseline'])} seeds, {of(exts[fw])})", "", *([" ".join(mixed), ""] if mixed else []),
               "| | claim | verdict | evidence |", "|---|---|---|---|"]
        md += [f"| {c['id']} | {c['claim']} | **{c['verdict']}** | {c['evidence']} |" for c in claims[fw]]
        md.append("")
    return md


def equivalence_section(hs, rows, exts, peers=()):
    """rows: equivalence(hs)."""
    mixed = mixes("the equivalence test", [h for fw in hs for m in hs[fw] for h in hs[fw][m]], peers)
    count = {v: sum(r["verdict"] == v for r in rows) for v in verdicts_in(rows)}
    seeds = {fw: len(hs[fw]["baseline"]) for fw in hs}
    span = min(r["span"] for r in rows)
    missing = unreached(rows)
    return ["## Do the frameworks agree? An equivalence test", "",
            f"Welch tests over seeds per model, metric and epoch ({seeds['flax']} Flax seeds, {seeds['torch']} "
            "PyTorch seeds), every one corrected across the table with Benjamini–Hochberg, one rule for both "
            "directions: 'equivalent' when two one-sided tests (TOST) place flax − torch inside the margin, 'not "
            "equivalent' when a one-sided test places it outside, 'differs, within margin not shown' when a "
            "two-sided test finds a difference whose size the seeds cannot place, 'not shown' when none does. "
            "'0 outside the CI (uncorrected)' marks a 90% CI of flax − torch that excludes 0 before any correction: "
            "a difference the correction did not keep, which a reader should still see. "
            "The margins and their reasons are in benchmarks/report/margins.py (EQUIV_*). "
            "'Seeds to show' is how many seeds per framework "
            "a TOST would need for 80% power if the true difference and spread were the ones observed ('–': the "
            "observed difference is at or beyond the margin).", "",
            f"Epochs compared: 1–{span}, those both frameworks reached ("
            + ", ".join(f"{fw} {of(exts[fw])}" for fw in hs) + ")"
            + (f"; checkpoint epochs {', '.join(map(str, missing))} not reached by both, so not tested."
               if missing else "."),
            "",
            f"Of {len(rows)} rows ({sum(isinstance(r['epoch'], int) for r in rows)} checkpoints and "
            f"{sum(not isinstance(r['epoch'], int) for r in rows)} means over epochs): "
            + "; ".join(f"{v}: {n}" for v, n in count.items()) + ".",
            *(["", mixed] if mixed else []),
            "", verdicts_line(rows), "", uncorrected_line(rows), "", equivalence_table(rows), "",
            *seed_draw_lines(hs)]


EARLY = 3  # the seeds of the first, smaller report: the notes discuss what its offset came from


def run_mean(h, field):
    """One run's metric averaged over the epochs it reached."""
    return float(column(h, field).mean())


def number(x):
    return f"{x:.3f}" if np.isfinite(x) else NOT_A_NUMBER


def seed_draw_lines(hs, early=EARLY):
    """The numbers the notes on the BaseLine offset rest on, generated: each seed's BaseLine training
    loss averaged over its run (lowest first), the first `early` seeds against the rest, and flax −
    torch over the first seeds and over all (Welch, 90% CI). Nothing here is written by hand."""
    def welch(a, b):
        if not np.isfinite(np.concatenate([a, b])).all():
            return "not tested (a value is not a number)"
        t = tost(a, b, 0.0)
        return f"{t['diff']:+.3f} (90% CI {t['ci90'][0]:+.3f} to {t['ci90'][1]:+.3f}; Welch p = {t['p_two']:.2g})"
    lines = ["### Which seeds were drawn (generated from the histories)", ""]
    per = {fw: {h["seed"]: run_mean(h, "train_loss") for h in hs[fw]["baseline"]} for fw in hs}
    for fw, losses in per.items():
        ranked = sorted(losses, key=losses.get)
        first = [s for s in sorted(losses)][:early]
        rest = [s for s in losses if s not in first]
        lines.append(f"- {fw}: BaseLine's training loss averaged over each run, lowest first: "
                     + ", ".join(f"seed {s} {number(losses[s])}" for s in ranked) + "."
                     + (f" Seeds {', '.join(map(str, first))} (ranked {', '.join(str(ranked.index(s) + 1) for s in first)}"
                        f" of {len(ranked)}) against the rest: {number(np.mean([losses[s] for s in first]))} vs "
                        f"{number(np.mean([losses[s] for s in rest]))}, difference "
                        + welch([losses[s] for s in first], [losses[s] for s in rest]) + "." if len(rest) > 1 else ""))
    if len(hs) == 2 and all(len(per[fw]) > early for fw in per):
        for field, name in (("train_loss", "training loss"), ("val_loss", "validation loss")):
            m = {fw: {h["seed"]: run_mean(h, field) for h in hs[fw]["baseline"]} for fw in hs}
            sub = {fw: [m[fw][s] for s in sorted(m[fw])[:early]] for fw in m}
            lines.append(f"- flax − torch, BaseLine {name} averaged over each run: first {early} seeds "
                         + welch(sub["flax"], sub["torch"]) + f"; all seeds ({len(m['flax'])} flax, "
                         f"{len(m['torch'])} torch) " + welch(list(m["flax"].values()), list(m["torch"].values()))
                         + ".")
    return lines + [""]


def row_name(r):
    return f"{r['model']} {r['metric']} at epoch {r['epoch']}"


def verdicts_line(rows):
    """Which rows got which verdict, and the one closest to equivalence, in one generated sentence
    (so notes need not restate a verdict that could drift from the table)."""
    parts = []
    for v in verdicts_in(rows):
        hits = [row_name(r) for r in rows if r["verdict"] == v]
        parts.append(f"{v}: " + ("none" if not hits else f"all {len(rows)}" if len(hits) == len(rows) else
                                 "; ".join(hits)))
    tested = [r for r in rows if np.isfinite(r["p_bh"])]
    closest = min(tested, key=lambda r: r["p_bh"]) if tested else None
    return ("By row — " + " — ".join(parts) + (f". Closest to equivalence: {row_name(closest)} (corrected TOST "
                                              f"p = {closest['p_bh']:.2g})." if closest else "."))


def uncorrected_line(rows):
    """The rows whose 90% CI excludes 0 before correction, in one sentence."""
    hits = [f"{row_name(r)} ({r['diff']:+.3f}, 90% CI {r['ci90'][0]:+.3f} to "
            f"{r['ci90'][1]:+.3f}; corrected p = {r['p_two_bh']:.2g})" for r in rows if r["zero_outside_ci"]]
    return "Before correction, 0 lies outside the 90% CI of flax − torch in " + ("; ".join(hits) if hits else
                                                                               "no row") + "."


def steps_section(path):
    """The device run's steps over all its leases (benchmarks.device.run's steps.json): every attempt
    with its machine and date, so a cut or skipped step is never read as a finished one."""
    with open(path) as f:
        records = json.load(f)["records"]
    lines = ["## Device run: every step, every lease", "",
             "A step is *finished* only when it ran to its end; *cut* stopped at its time cap (its results are "
             "partial: a training step resumes in the next lease), *skipped* was not started (it did not fit "
             "what was left), *failed* exited with an error.", "",
             "| step | lease | machine | date | status | planned s | cap s | actual s | detail |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['lease']} | {r['machine']} | {r['date']} | {r['status']} | {r['planned_s']} | "
              f"{r['cap_s']} | {r['actual_s']} | {r.get('detail', '')} |" for r in records]
    return lines + [""]
