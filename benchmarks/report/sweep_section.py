"""The report's section on the sweep (benchmarks.runners.sweep): batch size and dropout rate."""
import os

from benchmarks.folders import lane_file, seed_dir
from benchmarks.report.claims import OVERTAKE, PEAK_AROUND, ci_bounds, fmt, placed
from benchmarks.report.extent import cut, of
from benchmarks.report.provenance import mixes
from experiment.history import load_history
from experiment.lanes import folder_name
from experiment.variants import MODELS


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


def sweep_section(sweep, out, conv_dir=None, conv_seeds=None, peers=()):
    """sweep: a benchmarks.report.load.Sweep."""
    sweep_dir, sw, lanes = sweep.folder, sweep.summary, sweep.lanes
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
