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
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.claims import OVERTAKE, PEAK_AROUND, fmt, placed, tutorial_claims  # noqa: E402
from benchmarks.convergence import seed_dir  # noqa: E402
from benchmarks.equivalence import VERDICTS, equivalence  # noqa: E402
from benchmarks.equivalence import table as equivalence_table  # noqa: E402
from benchmarks.speed import table as speed_table  # noqa: E402
from benchmarks.stats import ALPHA  # noqa: E402
from experiment.atomic import atomic_write_text  # noqa: E402
from experiment.cli import MODELS  # noqa: E402
from experiment.history import column, load_history  # noqa: E402
from experiment.plots import TUTORIAL_PREFIX, plot_mean_std, save_panels  # noqa: E402

NAMES = {"baseline": "BaseLine", "dropout": "Dropout"}


def figures(hs, out, frameworks, n):
    files = []
    for fw in frameworks:
        path = f"fig_{fw}_curves.png"
        plot_mean_std({TUTORIAL_PREFIX[m]: hs[fw][m] for m in MODELS}, os.path.join(out, path),
                      title=f"{fw}: BaseLine vs Dropout, mean ± std over {n} seeds")
        files.append((f"{fw}: the tutorial's figure, mean ± std over seeds", path))
    for m in MODELS:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
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


ROWS = [("best val accuracy", "best_val_acc", 100, 2, "%"),
        ("epoch of best val accuracy", "best_val_acc_epoch", 1, 1, ""),
        ("best val loss", "best_val_loss", 1, 3, ""), ("epoch of best val loss", "best_val_loss_epoch", 1, 1, ""),
        ("val accuracy, last epoch", "last_val_acc", 100, 2, "%"),
        ("val − train loss, last epoch", "last_gap", 1, 3, ""),
        ("epochs to 45% val acc", "epochs_to_45", 1, 1, ""), ("epochs to 50% val acc", "epochs_to_50", 1, 1, ""),
        ("epochs to 55% val acc", "epochs_to_55", 1, 1, ""),
        ("train loss after 10 epochs", "train_loss_at_10", 1, 3, ""),
        ("train loss after 50 epochs", "train_loss_at_50", 1, 3, ""),
        ("train loss after 100 epochs", "train_loss_at_100", 1, 3, ""),
        ("test accuracy (best-val-loss checkpoint)", "test_acc", 100, 2, "%")]


def convergence_table(conv, frameworks):
    cols = [(fw, m) for fw in frameworks for m in MODELS]
    lines = ["| metric | " + " | ".join(f"{fw} {NAMES[m]}" for fw, m in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for label, key, scale, digits, unit in ROWS:
        cells = [fmt(conv[fw]["summary"][m][key], scale, digits, unit, len(conv["seeds"])) for fw, m in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for t in ("45", "50", "55"):
        cells = []
        for fw, m in cols:
            r = conv[fw]["slowdown_dropout_over_baseline"][f"epochs_to_{t}"]
            cells.append("" if m == "baseline" else (f"{r:.2f}×" if r else "–"))
        lines.append(f"| Dropout/BaseLine epochs to {t}% | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def histories_of(conv_dir, conv, frameworks):
    """Per framework and model, the histories of the seeds the convergence run has for it."""
    return {fw: {m: [load_history(os.path.join(seed_dir(conv_dir, fw, m, s), "history.json"))
                     for s in conv[fw].get("seeds", conv["seeds"])] for m in MODELS} for fw in frameworks}


def claims_section(hs, frameworks):
    md = ["## The tutorial's claims, part by part", "",
          "Each claim split into its parts, each part with its own verdict (benchmarks/claims.py). Tests are "
          f"one-sided at the {100 * ALPHA:.0f}% level over seeds; BaseLine and Dropout runs of one seed start from "
          "the same weights and batches and are compared as pairs; accuracies as exact counts of correct "
          "validation images; per-epoch tests corrected across epochs with Benjamini–Hochberg. "
          "Mean ± 95% CI.", ""]
    for fw in frameworks:
        md += [f"**{fw}** ({len(hs[fw]['baseline'])} seeds)", "",
               "| | claim | verdict | evidence |", "|---|---|---|---|"]
        md += [f"| {c['id']} | {c['claim']} | **{c['verdict']}** | {c['evidence']} |"
               for c in tutorial_claims(hs[fw]["baseline"], hs[fw]["dropout"])]
        md.append("")
    return md


def equivalence_section(hs):
    rows = equivalence(hs)
    count = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    seeds = {fw: len(hs[fw]["baseline"]) for fw in hs}
    return ["## Do the frameworks agree? An equivalence test", "",
            f"Two one-sided Welch tests per model, metric and epoch ({seeds['flax']} Flax seeds, {seeds['torch']} "
            "PyTorch seeds): 'equivalent' when the 90% CI of flax − torch lies inside the margin, 'not equivalent' "
            "when it lies wholly outside, 'differs, within margin not shown' when a two-sided test, corrected across "
            "the table (Benjamini–Hochberg), finds a difference whose size the seeds cannot place, 'not shown' when "
            "they cannot tell at all. The margins and their reasons are in parity_tests/tolerances.py (EQUIV_*). "
            "'Seeds to show' is how many seeds per framework "
            "a TOST would need for 80% power if the true difference and spread were the ones observed ('–': the "
            "observed difference is at or beyond the margin).", "",
            "Of " + f"{len(rows)} checkpoints: " + "; ".join(f"{v}: {count[v]}" for v in VERDICTS) + ".", "",
            equivalence_table(rows), ""]


def sweep_section(sweep_dir, out):
    sw = json.load(open(os.path.join(sweep_dir, "sweep.json")))
    rel = os.path.relpath(sweep_dir, out)
    md = ["## What the tutorial left unsaid: batch size and dropout rate", "",
          f"Made by `{sw['command']}` ({len(sw['seeds'])} seeds, {sw['epochs']} epochs; Flax, one program of lanes per "
          "batch size). 'Dropout ahead from' is the first epoch from which Dropout's val accuracy is significantly "
          "above the BaseLine's at every later epoch (as claim d). Mean ± 95% CI.", "",
          "| batch | lanes | BaseLine peak epoch | rate | final val acc | best val loss | Dropout ahead from |",
          "|---|---|---|---|---|---|---|"]
    for b in sw["batches"]:
        s = sw["summary"][str(b)]
        peak = fmt(s["rates"]["0"]["peak_epoch"]) if "0" in s["rates"] else "–"
        for r, row in s["rates"].items():
            cross = row.get("ahead_of_baseline", {}).get("from") if r != "0" else None
            md.append(f"| {b} | {s['lanes']} | {peak} | {r} | {fmt(row['final_val_acc'], 100, 2, '%')} | "
                      f"{fmt(row['best_val_loss'], 1, 3)} | {'–' if r == '0' else cross or 'never'} |")
    md += [""] + sweep_findings(sw) + [""]
    md += [f"![{f}]({rel}/{f})" for f in sw["figures"]] + [""]
    return md


def sweep_findings(sw):
    """What the sweep says about the tutorial's figure and the best rate, in sentences."""
    out = []
    fits = []
    for b in sw["batches"]:
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
        fits.append(f"batch {b}: BaseLine peak {fmt(peak)} (95% CI {where} {PEAK_AROUND[0]}–{PEAK_AROUND[1]}), "
                    f"Dropout 0.5 ahead from {when}")
    if fits:
        out.append("- The tutorial's figure (peak ≈ 50, Dropout ahead only at 200–300): " + "; ".join(fits) + ".")
    out += steps_finding(sw)
    for b in sw["batches"]:
        rates = sw["summary"][str(b)]["rates"]
        best = max(rates, key=lambda r: rates[r]["final_val_acc"]["mean"])
        out.append(f"- Batch {b}: the best final val accuracy is at rate {best} "
                   f"({fmt(rates[best]['final_val_acc'], 100, 2, '%')}), of rates {', '.join(rates)}.")
    return out


def steps_finding(sw):
    """Whether BaseLine's peak is set by Adam's steps rather than by epochs (a larger batch takes
    fewer steps an epoch), and, if it were, which batch size would put it at epoch 50."""
    rows = []
    for b in sw["batches"]:
        s = sw["summary"][str(b)]
        if "0" in s["rates"] and s["rates"]["0"]["peak_epoch"]["mean"] is not None:
            rows.append((b, s["rates"]["0"]["peak_epoch"]["mean"], s["steps_per_epoch"]))
    if len(rows) < 2:
        return []
    steps = [f"{peak * spe:,.0f} at batch {b}" for b, peak, spe in rows]
    b, peak, _ = rows[-1]
    target = b * sum(PEAK_AROUND) / 2 / peak  # constant steps: the peak epoch grows with the batch size
    return [f"- Steps to BaseLine's peak (mean peak epoch × steps per epoch): {', '.join(steps)}. If the peak "
            f"were set by the number of Adam steps alone, it would fall near epoch {sum(PEAK_AROUND) // 2} at a "
            f"batch of about {target:,.0f} (an extrapolation from batch {b}, not a measurement)."]


def steps_section(path):
    """The device run's steps over all its leases (benchmarks.device_run's steps.json): every attempt
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
    p.add_argument("--convergence", required=True, help="folder written by benchmarks.convergence")
    p.add_argument("--sweep", default=None, help="folder written by benchmarks.sweep")
    p.add_argument("--speed", default=None, help="folder written by benchmarks.speed")
    p.add_argument("--wall", default=None, help="folder written by benchmarks.wall")
    p.add_argument("--notes", default=None, help="a Markdown file of notes to include as they are")
    p.add_argument("--steps", default=None, help="a device run's steps.json: its steps over all leases")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    a = p.parse_args(argv)
    try:
        write_report(a, argv)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        # a results folder missing, damaged or written by an older version of a runner
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
                                     ((a.sweep, "sweep.json"), (a.speed, "speed.json")) if d]
    if a.wall:
        commands.append(json.load(open(os.path.join(a.wall, "wall.json")))["invocation"])
    md = [f"# BaseLine vs Dropout LeNet on CIFAR-10{(' — ' + a.title) if a.title else ''}", "",
          f"Machine: {h0['machine']['processor']}, {h0['machine']['cores']} cores; device {h0['device']}; "
          f"data: {h0['data']['n_train']} train / {h0['data']['n_val']} val / {h0['data']['n_test']} test images; "
          f"batch {conv['batch_size']}; seeds {seeds}; epochs: "
          + ", ".join(f"{fw} {conv[fw]['epochs']}" for fw in frameworks) + ".", "",
          "Made by:", "", *[f"    {c}" for c in commands],
          "    python -m benchmarks.report " + shlex.join(sys.argv[1:] if argv is None else argv), ""]
    md += steps_section(a.steps) if a.steps else []
    md += claims_section(hs, frameworks)
    if len(frameworks) == 2:
        md += equivalence_section(hs)
    if a.notes:
        md += [open(a.notes).read().strip(), ""]
    if a.sweep:
        md += sweep_section(a.sweep, a.out)
    md += [f"## Convergence (mean ± 95% CI over {n} seeds)", "", convergence_table(conv, frameworks), "",
           "Train loss and accuracy are running averages over each epoch in train mode (dropout active), as the "
           "tutorial reports them. 'never' = not reached within the run.", ""]
    for caption, path in figures(hs, a.out, frameworks, n):
        md += [f"### {caption}", "", f"![{caption}]({path})", ""]
    if a.speed:
        sp = json.load(open(os.path.join(a.speed, "speed.json")))
        md += ["## Speed", "", f"Made by `{sp['command']}` on {sp['machine']}.", "", speed_table(sp["rows"]), ""]
    if a.wall:
        md += ["## Wall time of the main job, and lanes", "", open(os.path.join(a.wall, "wall.md")).read(), ""]
    atomic_write_text(os.path.join(a.out, "REPORT.md"), "\n".join(md) + "\n")
    print(f"wrote {os.path.join(a.out, 'REPORT.md')}")


if __name__ == "__main__":
    main()
