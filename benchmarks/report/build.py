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
from benchmarks.report import eval_train
from benchmarks.report.extent import NO_REASON, cut, extent, of, stopped_line
from benchmarks.report.figures import figures
from benchmarks.report.first_screen import FROM_EVAL_TRAIN, Findings, first_screen
from benchmarks.report.load import load_inputs
from benchmarks.report.one_seed import section as one_seed_section
from benchmarks.report.provenance import distinct, machine_label
from benchmarks.report.provenance import table as provenance_table
from benchmarks.report.sections import claims_section, equivalence_section, steps_section
from benchmarks.report.shipped import section as shipped_section
from benchmarks.report.speed_figure import speed_figure
from benchmarks.report.speed_table import speed_machine
from benchmarks.report.speed_table import table as speed_table
from benchmarks.report.stats import MIN_SEEDS
from benchmarks.report.sweep_section import sweep_extents, sweep_section
from experiment.atomic import atomic_write_text


def extents(hs):
    """Per framework, how far its runs got (both models, every seed) against what they planned."""
    return {fw: extent(hs[fw]["baseline"] + hs[fw]["dropout"]) for fw in hs}


def stop_reasons(conv, frameworks):
    """Why each framework's run stopped, as the runner recorded it (an older runner did not)."""
    return {fw: conv[fw].get("stopped", NO_REASON) for fw in frameworks}


def with_eval_mode(claims, et):
    """The first screen's claims: where the main runs did not measure c1e, the --eval-train runs' c1e,
    before c1 (the train-mode loss the body calls partly raised by construction)."""
    out = {}
    for fw, cs in claims.items():
        c1e = et.claims.get(fw, {}).get("c1e") if et else None
        if c1e is None or any(c["id"] == "c1e" for c in cs):
            out[fw] = cs
            continue
        at = next(i for i, c in enumerate(cs) if c["id"] == "c1")
        out[fw] = cs[:at] + [{**c1e, "source": FROM_EVAL_TRAIN}] + cs[at:]
    return out


def equivalence_rows(hs, frameworks):
    """The equivalence table, where there are two frameworks, each with the seeds a test needs."""
    enough = all(len(hs[fw]["baseline"]) >= MIN_SEEDS for fw in frameworks)
    return equivalence(hs) if len(frameworks) == 2 and enough else []


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
    rows = equivalence_rows(hs, frameworks)
    et = eval_train.load(a.eval_train) if a.eval_train else None
    os.makedirs(a.out, exist_ok=True)
    found = Findings(with_eval_mode(claims, et), conv, frameworks, rows, sp, sp and speed_machine(sp))
    md = [f"# BaseLine vs Dropout LeNet on CIFAR-10{(' — ' + a.title) if a.title else ''}", "",
          *first_screen(found), *runs_section(inp, exts, whys, peers), "## Provenance", "",
          "Where, by which code and when each group of runs was trained, as their histories record it (a history "
          "written before the commit was recorded says 'not recorded'; one whose config lacks fields a later "
          "version writes is of an earlier version). A comparison that pools groups says so where it is made.", "",
          provenance_table(named, peers), ""]
    md += steps_section(a.steps) if a.steps else []
    md += claims_section(hs, claims, exts, peers, eval_train.settled(et, hs))
    md += one_seed_section(hs, exts)
    if et:
        md += eval_train.section(et, hs)
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
        md += ["## Speed", "", f"Made by `{sp['command']}` on {speed_machine(sp)}. 'vs fastest PyTorch way, as "
               "many models' compares a Flax row with the fastest way PyTorch trains as many models at the same model, "
               "batch size and precision: a row of as many lanes, or of fewer lanes run one after the other (at its "
               "own model-images/s).", "", speed_table(sp["rows"]), ""]
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
    machines, runs = {}, distinct(peers)
    for h in runs:
        machines[machine_label(h)] = machines.get(machine_label(h), 0) + 1
    return ["## The runs", "",
            "Machines: " + "; ".join(f"{m} ({k} runs)" for m, k in machines.items())
            + (f" ({len(runs)} distinct runs: a run the sweep reused is counted once; " if len(runs) < len(peers)
               else " (")
            + f"by run group under Provenance); device {h0['device']}; "
            f"data: {h0['data']['n_train']} train / {h0['data']['n_val']} val / {h0['data']['n_test']} test images; "
            f"batch {conv['batch_size']}; seeds {conv['seeds']}; epochs: "
            + ", ".join(f"{fw} {of(exts[fw])}" for fw in frameworks) + ".", "",
            *(["**Stopped early** (nothing after the epoch each reached is judged or shown):", "",
               *[f"- {c}" for c in cuts], ""] if cuts else ["Every run finished the epochs it planned.", ""])]


if __name__ == "__main__":
    main()
