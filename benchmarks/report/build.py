"""python -m benchmarks.report: REPORT.md from a convergence run: the tutorial's claims part by part,
the frameworks' equivalence, and, when given, a sweep, a speed run and a wall-time run.

  python -m benchmarks.report --convergence benchmarks/results/cpu/convergence --sweep benchmarks/results/cpu/sweep \
      --speed benchmarks/results/cpu-speed --out benchmarks/results/cpu
"""
import argparse
import json
import os
import shlex
import sys

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from benchmarks.report.claims import OVERTAKE, PEAK_AROUND, ci_bounds, fmt, placed, tutorial_claims  # noqa: E402
from benchmarks.runners.convergence import TRAIN_LOSS_AT, histories_of, seed_dir  # noqa: E402
from benchmarks.report.equivalence import VERDICTS, equivalence, unreached  # noqa: E402
from benchmarks.report.equivalence import table as equivalence_table  # noqa: E402
from benchmarks.report.eval_train import section as eval_train_section  # noqa: E402
from benchmarks.report.extent import NO_REASON, cut, extent, of, stopped_line  # noqa: E402
from benchmarks.report.first_screen import first_screen  # noqa: E402
from benchmarks.report.provenance import machine_label, mixes, pairs_mixed  # noqa: E402
from benchmarks.report.provenance import table as provenance_table  # noqa: E402
from benchmarks.report.shipped import section as shipped_section  # noqa: E402
from benchmarks.runners.speed import table as speed_table  # noqa: E402
from benchmarks.report.speed_figure import speed_figure  # noqa: E402
from benchmarks.report.stats import ALPHA, tost  # noqa: E402
from benchmarks.runners.sweep import lane_file  # noqa: E402
from experiment.atomic import atomic_write_text  # noqa: E402
from experiment.history import column, load_history  # noqa: E402
from experiment.lanes import folder_name  # noqa: E402
from experiment.plots import panels, plot_mean_std, save_panels  # noqa: E402
from experiment.variants import MODELS, VARIANTS  # noqa: E402

NAMES = {"baseline": "BaseLine", "dropout": "Dropout"}


def figures(hs, out, frameworks, n):
    files = []
    for fw in frameworks:
        path = f"fig_{fw}_curves.png"
        plot_mean_std({VARIANTS[m].legend: hs[fw][m] for m in MODELS}, os.path.join(out, path),
                      title=f"{fw}: BaseLine vs Dropout, mean ± std over {n} seeds")
        files.append((f"{fw}: the tutorial's figure, mean ± std over seeds", path))
    for m in MODELS:
        fig, axes = panels()
        for fw in frameworks:
            for split, style in (("train", "-"), ("val", "--")):
                for ax, field, scale in ((axes[0], "loss", 1), (axes[1], "acc", 100)):
                    k = min(len(h["epochs"]) for h in hs[fw][m])
                    v = scale * np.stack([column(h, f"{split}_{field}")[:k] for h in hs[fw][m]])
                    (line,) = ax.plot(np.arange(1, k + 1), v.mean(0), style, label=f"{fw} {split}")
                    ax.fill_between(np.arange(1, k + 1), v.mean(0) - v.std(0), v.mean(0) + v.std(0),
                                    color=line.get_color(), alpha=0.15)
        path = f"fig_{m}_frameworks.png"
        save_panels(fig, axes, os.path.join(out, path), f"{NAMES[m]}: frameworks overlaid (mean ± std over {n} seeds)")
        files.append((f"{NAMES[m]}: both frameworks", path))
    return files


END = "end"  # a row about the run's planned last epoch
# label, key in convergence.json's summary, scale, digits, unit, the epoch the row needs (None: over
# the epochs the run reached; a cut run's column header says how many those are)
ROWS = [("best val accuracy", "best_val_acc", 100, 2, "%", None),
        ("epoch of best val accuracy", "best_val_acc_epoch", 1, 1, "", None),
        ("best val loss", "best_val_loss", 1, 3, "", None),
        ("epoch of best val loss", "best_val_loss_epoch", 1, 1, "", None),
        ("val accuracy, last epoch", "last_val_acc", 100, 2, "%", END),
        ("val − train loss, last epoch", "last_gap", 1, 3, "", END),
        ("epochs to 45% val acc", "epochs_to_45", 1, 1, "", None),
        ("epochs to 50% val acc", "epochs_to_50", 1, 1, "", None),
        ("epochs to 55% val acc", "epochs_to_55", 1, 1, "", None),
        *[(f"train loss after {e} epochs", f"train_loss_at_{e}", 1, 3, "", e) for e in TRAIN_LOSS_AT],
        ("test accuracy (best-val-loss checkpoint)", "test_acc", 100, 2, "%", None)]


def cell(stat, row, ext, total):
    """One table cell: the number, or why there is none; never a value of an earlier epoch."""
    _, key, scale, digits, unit, needs = row
    needed = ext["planned"] if needs == END else needs
    if needed is not None and needed > ext["reached"]:
        return f"not reached ({of(ext)})"
    if stat["mean"] is None and key == "test_acc":
        return "not evaluated"
    s = fmt(stat, scale, digits, unit, total)
    return f"not within {ext['reached']} epochs" if s == "never" and cut(ext) else s


def convergence_table(conv, frameworks, exts):
    cols = [(fw, m) for fw in frameworks for m in MODELS]
    lines = ["| metric | " + " | ".join(f"{fw} {NAMES[m]}" + (f" ({of(exts[fw])})" if cut(exts[fw]) else "")
                                        for fw, m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for row in ROWS:
        cells = [cell(conv[fw]["summary"][m][row[1]], row, exts[fw], len(conv["seeds"])) for fw, m in cols]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    for t in ("45", "50", "55"):
        cells = []
        for fw, m in cols:
            r = conv[fw]["slowdown_dropout_over_baseline"][f"epochs_to_{t}"]
            cells.append("" if m == "baseline" else (f"{r:.2f}×" if r else "–"))
        lines.append(f"| Dropout/BaseLine epochs to {t}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def extents(hs):
    """Per framework, how far its runs got (both models, every seed) against what they planned."""
    return {fw: extent(hs[fw]["baseline"] + hs[fw]["dropout"]) for fw in hs}


def stop_reasons(conv, frameworks):
    """Why each framework's run stopped, as the runner recorded it (an older runner did not)."""
    return {fw: conv[fw].get("stopped", NO_REASON) for fw in frameworks}


def claims_section(hs, claims, exts, peers=()):
    """claims[framework]: tutorial_claims of its histories hs[framework]."""
    md = ["## The tutorial's claims, part by part", "",
          "Each claim split into its parts, each part with its own verdict (benchmarks/report/claims.py). Tests are "
          f"one-sided at the {100 * ALPHA:.0f}% level over seeds; BaseLine and Dropout runs of one seed start from "
          "the same weights and batches and are compared as pairs; accuracies as exact counts of correct "
          "validation images; per-epoch tests corrected across epochs with Benjamini–Hochberg. "
          "Mean ± 95% CI. A claim is judged only at the epoch its test needs (benchmarks/report/claims.py NEEDS); a run "
          "that stopped before it gets 'not judged'. Claim d is read two ways: d1, the curves cross; d2, Dropout's "
          "val accuracy passes that of the checkpoint BaseLine keeps (its best-val-loss epoch, as the tutorial "
          "keeps best_ckpt.pth; not its best val accuracy, shown beside it), decided as d1 by the epoch from which "
          "Dropout is significantly above it at every later epoch.", ""]
    for fw in claims:
        mixed = [x for x in (mixes(f"{fw}'s paired tests", hs[fw]["baseline"] + hs[fw]["dropout"], peers),
                             pairs_mixed(f"{fw}'s pairs", hs[fw]["baseline"], hs[fw]["dropout"])) if x]
        md += [f"**{fw}** ({len(hs[fw]['baseline'])} seeds, {of(exts[fw])})", "", *([" ".join(mixed), ""] if mixed else []),
               "| | claim | verdict | evidence |", "|---|---|---|---|"]
        md += [f"| {c['id']} | {c['claim']} | **{c['verdict']}** | {c['evidence']} |" for c in claims[fw]]
        md.append("")
    return md


def equivalence_section(hs, rows, exts, peers=()):
    """rows: equivalence(hs)."""
    mixed = mixes("the equivalence test", [h for fw in hs for m in hs[fw] for h in hs[fw][m]], peers)
    count = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
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
            "The margins and their reasons are in parity_tests/tolerances.py (EQUIV_*). "
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
            + "; ".join(f"{v}: {count[v]}" for v in VERDICTS) + ".",
            *(["", mixed] if mixed else []),
            "", verdicts_line(rows), "", uncorrected_line(rows), "", equivalence_table(rows), "",
            *seed_draw_lines(hs)]


EARLY = 3  # the seeds of the first, smaller report: the notes discuss what its offset came from


def run_mean(h, field):
    """One run's metric averaged over the epochs it reached."""
    return float(column(h, field).mean())


def seed_draw_lines(hs, early=EARLY):
    """The numbers the notes on the BaseLine offset rest on, generated: each seed's BaseLine training
    loss averaged over its run (lowest first), the first `early` seeds against the rest, and flax −
    torch over the first seeds and over all (Welch, 90% CI). Nothing here is written by hand."""
    def welch(a, b):
        t = tost(a, b, 0.0)
        return f"{t['diff']:+.3f} (90% CI {t['ci90'][0]:+.3f} to {t['ci90'][1]:+.3f}; Welch p = {t['p_two']:.2g})"
    lines = ["### Which seeds were drawn (generated from the histories)", ""]
    per = {fw: {h["seed"]: run_mean(h, "train_loss") for h in hs[fw]["baseline"]} for fw in hs}
    for fw, losses in per.items():
        ranked = sorted(losses, key=losses.get)
        first = [s for s in sorted(losses)][:early]
        rest = [s for s in losses if s not in first]
        lines.append(f"- {fw}: BaseLine's training loss averaged over each run, lowest first: "
                     + ", ".join(f"seed {s} {losses[s]:.3f}" for s in ranked) + "."
                     + (f" Seeds {', '.join(map(str, first))} (ranked {', '.join(str(ranked.index(s) + 1) for s in first)}"
                        f" of {len(ranked)}) against the rest: {np.mean([losses[s] for s in first]):.3f} vs "
                        f"{np.mean([losses[s] for s in rest]):.3f}, difference "
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
    for v in VERDICTS:
        hits = [row_name(r) for r in rows if r["verdict"] == v]
        parts.append(f"{v}: " + ("none" if not hits else f"all {len(rows)}" if len(hits) == len(rows) else
                                 "; ".join(hits)))
    closest = min(rows, key=lambda r: r["p_bh"])
    return ("By row — " + " — ".join(parts) + f". Closest to equivalence: {row_name(closest)} (corrected TOST "
            f"p = {closest['p_bh']:.2g}).")


def uncorrected_line(rows):
    """The rows whose 90% CI excludes 0 before correction, in one sentence."""
    hits = [f"{row_name(r)} ({r['diff']:+.3f}, 90% CI {r['ci90'][0]:+.3f} to "
            f"{r['ci90'][1]:+.3f}; corrected p = {r['p_two_bh']:.2g})" for r in rows if r["zero_outside_ci"]]
    return "Before correction, 0 lies outside the 90% CI of flax − torch in " + ("; ".join(hits) if hits else
                                                                               "no row") + "."


def sweep_extents(sw):
    """Per batch size, how far its lanes got against the sweep's planned epochs."""
    return {b: {"reached": sw["summary"][str(b)]["epochs"], "planned": sw["epochs"]} for b in sw["batches"]}


def reused_seeds(sweep_dir, conv_dir, sw, batch):
    """The seeds whose lanes at this batch size are the convergence run's Flax runs themselves
    (identical histories, as --reuse copies them): a subset of the convergence table's seeds."""
    if conv_dir is None:
        return []
    pairs = {s: [(lane_file(sweep_dir, batch, r, s), os.path.join(seed_dir(conv_dir, "flax", folder_name(r), s),
                                                                  "history.json"))
                 for r in sw["rates"] if folder_name(r) in MODELS] for s in sw["seeds"]}
    return [s for s, files in pairs.items() if files and all(
        os.path.exists(c) and os.path.exists(lane) and load_history(lane)["epochs"] == load_history(c)["epochs"]
        for lane, c in files)]


def sweep_lanes(sweep_dir, sw):
    """Per batch size, the histories of its lanes (those on disk: the sweep's summary is what it reports)."""
    return {b: [load_history(f) for f in (lane_file(sweep_dir, b, r, s) for r in sw["rates"] for s in sw["seeds"])
                if os.path.exists(f)] for b in sw["batches"]}


def sweep_section(sweep_dir, out, conv_dir=None, conv_seeds=None, peers=()):
    sw = json.load(open(os.path.join(sweep_dir, "sweep.json")))
    lanes = sweep_lanes(sweep_dir, sw)
    exts = sweep_extents(sw)
    rel = os.path.relpath(sweep_dir, out)
    reused = {b: reused_seeds(sweep_dir, conv_dir, sw, b) for b in sw["batches"]}
    md = ["## What the tutorial left unsaid: batch size and dropout rate", "",
          f"Made by `{sw['command']}` ({len(sw['seeds'])} seeds, {sw['epochs']} epochs; Flax, one program of lanes per "
          "batch size). 'Dropout ahead' gives the first epoch at which Dropout's val accuracy is significantly above "
          "the BaseLine's, and the first from which it is at every later epoch (as claim d1). With few seeds these "
          "epochs say how soon a lead becomes significant (power) as much as when it begins: a difference between "
          "batch sizes is no batch effect unless a test of it says so. Mean ± 95% CI.", "",
          "| batch | seeds | lanes | BaseLine peak epoch | rate | final val acc | best val loss | Dropout ahead: first "
          "/ from every later epoch |", "|---|---|---|---|---|---|---|---|"]
    for b in sw["batches"]:
        s = sw["summary"][str(b)]
        short = f" ({of(exts[b])})" if cut(exts[b]) else ""  # over the epochs reached; the rest not judged
        peak = fmt(s["rates"]["0"]["peak_epoch"]) + short if "0" in s["rates"] else "–"
        subset = f" (the same runs as seeds {', '.join(map(str, reused[b]))} above)" if reused[b] else ""
        for r, row in s["rates"].items():
            a = row.get("ahead_of_baseline", {})
            final = f"not reached{short}" if short else fmt(row['final_val_acc'], 100, 2, '%')
            ahead_from = "–" if r == "0" else f"not judged{short}" if short else \
                f"{a.get('first') or 'never'} / {a.get('from') or 'never'}"
            md.append(f"| {b} | {row['final_val_acc']['n']}{subset} | {s['lanes']} | {peak} | {r} | {final} | "
                      f"{fmt(row['best_val_loss'], 1, 3)}{short} | {ahead_from} |")
    for b in [b for b in sw["batches"] if reused[b]]:
        md += ["", f"Batch {b}'s rows are seeds {', '.join(map(str, reused[b]))} of the convergence run above "
                   f"(identical histories), a subset of its {len(conv_seeds or [])} seeds: where they differ from its "
                   "table, that is which seeds were drawn, not another experiment."]
    mixed = mixes("a comparison across batch sizes", [h for hs in lanes.values() for h in hs], peers)
    md += [""] + ([mixed, ""] if mixed else []) + sweep_findings(sw) + [""]
    md += [f"![{f}]({rel}/{f})" for f in sw["figures"]] + [""]
    return md


def sweep_findings(sw):
    """What the sweep says about the tutorial's figure and the best rate, in sentences."""
    exts = sweep_extents(sw)
    whole = [b for b in sw["batches"] if not cut(exts[b])]
    out = [f"- Batch {b} stopped at {of(exts[b])}: nothing about it is judged."
           for b in sw["batches"] if b not in whole]
    fits = []
    for b in whole:
        s = sw["summary"][str(b)]["rates"]
        if "0" not in s or "0.5" not in s:
            continue
        peak, cross = s["0"]["peak_epoch"], s["0.5"]["ahead_of_baseline"]["from"]
        where = placed(peak, PEAK_AROUND)
        if cross is None:
            short = " (too short to tell)" if sw["epochs"] < OVERTAKE[1] else ""
            when = f"never within {sw['epochs']} epochs{short}"
        else:
            side = "before" if cross < OVERTAKE[0] else "after" if cross > OVERTAKE[1] else "inside"
            when = f"{cross} ({side} {OVERTAKE[0]}–{OVERTAKE[1]})"
        fits.append(f"batch {b} ({peak['n']} seeds): BaseLine peak {fmt(peak)} (95% CI {where} {PEAK_AROUND[0]}–"
                    f"{PEAK_AROUND[1]}), Dropout 0.5 ahead from {when}")
    if fits:
        out.append("- The tutorial's figure (peak ≈ 50, Dropout ahead only at 200–300): " + "; ".join(fits) + ".")
    out += steps_finding(sw, whole)
    for b in whole:
        rates = sw["summary"][str(b)]["rates"]
        best = max(rates, key=lambda r: rates[r]["final_val_acc"]["mean"])
        out.append(f"- Batch {b}: the best final val accuracy is at rate {best} "
                   f"({fmt(rates[best]['final_val_acc'], 100, 2, '%')}), of rates {', '.join(rates)}.")
    return out


def steps_finding(sw, batches):
    """BaseLine's peak in Adam steps (peak epoch × steps per epoch) per batch size, with its interval:
    whether steps rather than epochs set the peak is for these intervals to say, not extrapolated."""
    rows = []
    for b in batches:
        s = sw["summary"][str(b)]
        if "0" in s["rates"] and s["rates"]["0"]["peak_epoch"]["mean"] is not None:
            peak, spe = s["rates"]["0"]["peak_epoch"], s["steps_per_epoch"]
            rows.append((b, {**peak, "mean": peak["mean"] * spe, "ci95": peak["ci95"] and peak["ci95"] * spe}))
    if len(rows) < 2:
        return []
    bounds = [ci_bounds(st) for _, st in rows]
    overlap = max(lo for lo, _ in bounds) <= min(hi for _, hi in bounds)
    return ["- Steps to BaseLine's peak (peak epoch × steps per epoch, mean ± 95% CI): "
            + ", ".join(f"{fmt(st, digits=0)} at batch {b} ({st['n']} seeds)" for b, st in rows)
            + (": the intervals overlap, so these seeds cannot tell whether the steps or the epochs set the peak."
               if overlap else ": the intervals do not overlap, so the number of steps alone does not set the peak.")]


def steps_section(path):
    """The device run's steps over all its leases (benchmarks.device.run's steps.json): every attempt
    with its machine and date, so a cut or skipped step is never read as a finished one."""
    records = json.load(open(path))["records"]
    lines = ["## Device run: every step, every lease", "",
             "A step is *finished* only when it ran to its end; *cut* stopped at its time cap (its results are "
             "partial: a training step resumes in the next lease), *skipped* was not started (it did not fit "
             "what was left), *failed* exited with an error.", "",
             "| step | lease | machine | date | status | planned s | cap s | actual s | detail |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['lease']} | {r['machine']} | {r['date']} | {r['status']} | {r['planned_s']} | "
              f"{r['cap_s']} | {r['actual_s']} | {r.get('detail', '')} |" for r in records]
    return lines + [""]


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.report", description=__doc__.splitlines()[0])
    p.add_argument("--convergence", required=True, help="folder written by benchmarks.runners.convergence")
    p.add_argument("--sweep", default=None, help="folder written by benchmarks.runners.sweep")
    p.add_argument("--speed", default=None, help="folder written by benchmarks.runners.speed")
    p.add_argument("--wall", default=None, help="folder written by benchmarks.runners.wall")
    p.add_argument("--notes", default=None, help="a Markdown file of notes to include as they are")
    p.add_argument("--steps", default=None, help="a device run's steps.json: its steps over all leases")
    p.add_argument("--eval-train", default=None,
                   help="folder written by benchmarks.runners.convergence with --eval-train runs that repeat the main "
                        "runs' first epochs: the training loss in eval mode (claim c1e)")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    try:
        write_report(a, argv)
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError) as e:
        # a results folder missing, damaged (JSON nested thousands deep too) or written by an older runner
        p.error(f"cannot build the report from these results ({type(e).__name__}: {e}); "
                "rerun the runner that wrote them")


def write_report(a, argv):
    conv = json.load(open(os.path.join(a.convergence, "convergence.json")))
    frameworks = [fw for fw in ("flax", "torch") if fw in conv]
    seeds, n = conv["seeds"], len(conv["seeds"])
    os.makedirs(a.out, exist_ok=True)
    hs = histories_of(a.convergence, conv, frameworks)
    h0 = hs[frameworks[0]]["baseline"][0]
    commands = [conv["command"]] + [json.load(open(os.path.join(d, f)))["command"] for d, f in
                                     ((a.eval_train, "convergence.json"), (a.sweep, "sweep.json"),
                                      (a.speed, "speed.json")) if d]
    if a.wall:
        commands.append(json.load(open(os.path.join(a.wall, "wall.json")))["invocation"])
    exts, whys = extents(hs), stop_reasons(conv, frameworks)
    cuts = [stopped_line(fw, len(hs[fw]["baseline"]), exts[fw], whys[fw]) for fw in frameworks if cut(exts[fw])]
    if a.sweep:
        sw = json.load(open(os.path.join(a.sweep, "sweep.json")))
        cuts += [stopped_line(f"sweep batch {b}", len(sw["seeds"]), e, None)
                 for b, e in sweep_extents(sw).items() if cut(e)]
    named = {fw: hs[fw]["baseline"] + hs[fw]["dropout"] for fw in frameworks}
    if a.sweep:
        named.update({f"sweep, batch {b}": lanes for b, lanes in sweep_lanes(a.sweep, sw).items()})
    peers = [h for hs_ in named.values() for h in hs_]
    machines = {}
    for h in peers:
        machines[machine_label(h)] = machines.get(machine_label(h), 0) + 1
    claims = {fw: tutorial_claims(hs[fw]["baseline"], hs[fw]["dropout"], whys[fw]) for fw in frameworks}
    rows = equivalence(hs) if len(frameworks) == 2 else []
    sp = json.load(open(os.path.join(a.speed, "speed.json"))) if a.speed else None
    md = [f"# BaseLine vs Dropout LeNet on CIFAR-10{(' — ' + a.title) if a.title else ''}", "",
          *first_screen(claims, conv, frameworks, rows, sp and sp["rows"], sp and speed_machine(sp)),
          "## The runs", "",
          "Machines: " + "; ".join(f"{m} ({k} runs)" for m, k in machines.items()) + " (by run group under "
          f"Provenance); device {h0['device']}; "
          f"data: {h0['data']['n_train']} train / {h0['data']['n_val']} val / {h0['data']['n_test']} test images; "
          f"batch {conv['batch_size']}; seeds {seeds}; epochs: "
          + ", ".join(f"{fw} {of(exts[fw])}" for fw in frameworks) + ".", "",
          *(["**Stopped early** (nothing after the epoch each reached is judged or shown):", "",
             *[f"- {c}" for c in cuts], ""] if cuts else ["Every run finished the epochs it planned.", ""]),
          "## Provenance", "",
          "Where, by which code and when each group of runs was trained, as their histories record it (a history "
          "written before the commit was recorded says 'not recorded'; one whose config lacks fields a later "
          "version writes is of an earlier version). A comparison that pools groups says so where it is made.", "",
          provenance_table(named, peers), ""]
    md += steps_section(a.steps) if a.steps else []
    md += claims_section(hs, claims, exts, peers)
    if a.eval_train:
        md += eval_train_section(a.eval_train, hs)
    md += shipped_section(conv, frameworks, exts)
    if rows:
        md += equivalence_section(hs, rows, exts, peers)
    if a.notes:
        md += [open(a.notes).read().strip(), ""]
    if a.sweep:
        md += sweep_section(a.sweep, a.out, a.convergence, seeds, peers)
    md += [f"## Convergence (mean ± 95% CI over {n} seeds)", "", convergence_table(conv, frameworks, exts), "",
           "Train loss and accuracy are running averages over each epoch in train mode (dropout active), as the "
           "tutorial reports them. 'never' = not reached within the run; 'not reached' = the row needs an epoch the "
           "run did not get to.", ""]
    for caption, path in figures(hs, a.out, frameworks, n):
        md += [f"### {caption}", "", f"![{caption}]({path})", ""]
    if sp:
        md += ["## Speed", "", f"Made by `{sp['command']}` on {speed_machine(sp)}.", "", speed_table(sp["rows"]), ""]
        if speed_figure(sp["rows"], os.path.join(a.out, "fig_speed.png")):
            md += ["![training img/s against lanes](fig_speed.png)", ""]
    if a.wall:
        md += ["## Wall time of the main job, and lanes", "", open(os.path.join(a.wall, "wall.md")).read(), ""]
    md += ["## Made by", "", *[f"    {c}" for c in commands],
           "    python -m benchmarks.report " + shlex.join(sys.argv[1:] if argv is None else argv), ""]
    atomic_write_text(os.path.join(a.out, "REPORT.md"), "\n".join(md) + "\n")
    print(f"wrote {os.path.join(a.out, 'REPORT.md')}")


def speed_machine(sp):
    """Where the speed rows were measured, in words (a merged table may hold several machines)."""
    machines = {json.dumps(r.get("machine", sp["machine"]), sort_keys=True) for r in sp["rows"]}
    said = [json.loads(m) for m in sorted(machines)]
    devices = lambda m: [d for d in dict.fromkeys(m.get("jax_devices", [])) if d != "cpu"]  # noqa: E731
    return "; ".join(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" + "".join(f", {d}" for d in devices(m))
                     for m in said)


if __name__ == "__main__":
    main()
