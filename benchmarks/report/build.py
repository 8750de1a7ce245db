"""python -m benchmarks.report: REPORT.md from a convergence run: the tutorial's claims part by part,
the frameworks' equivalence, and, when given, a sweep, a speed run and a wall-time run.

  python -m benchmarks.report --convergence benchmarks/results/cpu/convergence --sweep benchmarks/results/cpu/sweep \
      --speed benchmarks/results/cpu-speed --out benchmarks/results/cpu

Reads its inputs (load.py), computes the claims (claims.py), the frameworks' equivalence
(equivalence.py) and how far each run got (extent.py), then renders each section (first_screen.py,
sections.py, sweep_section.py, convergence_table.py, figures.py, speed_table.py) into OUT/REPORT.md.
"""
import argparse
import os
import shlex
import sys

from benchmarks.report.claims import tutorial_claims
from benchmarks.report.convergence_table import convergence_table
from benchmarks.report.equivalence import equivalence
from benchmarks.report.eval_train import section as eval_train_section
from benchmarks.report.extent import NO_REASON, cut, extent, of, stopped_line
from benchmarks.report.figures import figures
from benchmarks.report.first_screen import first_screen
from benchmarks.report.load import load_inputs
from benchmarks.report.provenance import machine_label
from benchmarks.report.provenance import table as provenance_table
from benchmarks.report.sections import claims_section, equivalence_section, steps_section
from benchmarks.report.shipped import section as shipped_section
from benchmarks.report.speed_figure import speed_figure
from benchmarks.report.speed_table import speed_machine
from benchmarks.report.speed_table import table as speed_table
from benchmarks.report.sweep_section import sweep_extents, sweep_section
from experiment.atomic import atomic_write_text


def extents(hs):
    """Per framework, how far its runs got (both models, every seed) against what they planned."""
    return {fw: extent(hs[fw]["baseline"] + hs[fw]["dropout"]) for fw in hs}


def stop_reasons(conv, frameworks):
    """Why each framework's run stopped, as the runner recorded it (an older runner did not)."""
    return {fw: conv[fw].get("stopped", NO_REASON) for fw in frameworks}


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
    inp = load_inputs(a)
    conv, frameworks, hs, sp = inp.conv, inp.frameworks, inp.hs, inp.speed
    n = len(conv["seeds"])
    exts, whys = extents(hs), stop_reasons(conv, frameworks)
    named = {fw: hs[fw]["baseline"] + hs[fw]["dropout"] for fw in frameworks}
    if inp.sweep:
        named.update({f"sweep, batch {b}": lanes for b, lanes in inp.sweep.lanes.items()})
    peers = [h for hs_ in named.values() for h in hs_]
    claims = {fw: tutorial_claims(hs[fw]["baseline"], hs[fw]["dropout"], whys[fw]) for fw in frameworks}
    rows = equivalence(hs) if len(frameworks) == 2 else []
    os.makedirs(a.out, exist_ok=True)
    md = [f"# BaseLine vs Dropout LeNet on CIFAR-10{(' — ' + a.title) if a.title else ''}", "",
          *first_screen(claims, conv, frameworks, rows, sp and sp["rows"], sp and speed_machine(sp)),
          *runs_section(inp, exts, whys, peers), "## Provenance", "",
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
    if inp.notes:
        md += [inp.notes, ""]
    if inp.sweep:
        md += sweep_section(inp.sweep, a.out, a.convergence, conv["seeds"], peers)
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
    if inp.wall_md is not None:
        md += ["## Wall time of the main job, and lanes", "", inp.wall_md, ""]
    md += ["## Made by", "", *[f"    {c}" for c in inp.commands],
           "    python -m benchmarks.report " + shlex.join(sys.argv[1:] if argv is None else argv), ""]
    atomic_write_text(os.path.join(a.out, "REPORT.md"), "\n".join(md) + "\n")
    print(f"wrote {os.path.join(a.out, 'REPORT.md')}")


def runs_section(inp, exts, whys, peers):
    """What was run: the machines, the data, the settings, how far each run got and why it stopped."""
    conv, frameworks, hs = inp.conv, inp.frameworks, inp.hs
    h0 = hs[frameworks[0]]["baseline"][0]
    cuts = [stopped_line(fw, len(hs[fw]["baseline"]), exts[fw], whys[fw]) for fw in frameworks if cut(exts[fw])]
    if inp.sweep:
        cuts += [stopped_line(f"sweep batch {b}", len(inp.sweep.summary["seeds"]), e, None)
                 for b, e in sweep_extents(inp.sweep.summary).items() if cut(e)]
    machines = {}
    for h in peers:
        machines[machine_label(h)] = machines.get(machine_label(h), 0) + 1
    return ["## The runs", "",
            "Machines: " + "; ".join(f"{m} ({k} runs)" for m, k in machines.items()) + " (by run group under "
            f"Provenance); device {h0['device']}; "
            f"data: {h0['data']['n_train']} train / {h0['data']['n_val']} val / {h0['data']['n_test']} test images; "
            f"batch {conv['batch_size']}; seeds {conv['seeds']}; epochs: "
            + ", ".join(f"{fw} {of(exts[fw])}" for fw in frameworks) + ".", "",
            *(["**Stopped early** (nothing after the epoch each reached is judged or shown):", "",
               *[f"- {c}" for c in cuts], ""] if cuts else ["Every run finished the epochs it planned.", ""])]


if __name__ == "__main__":
    main()
