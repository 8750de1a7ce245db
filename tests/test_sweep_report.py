"""The report's sweep section on made-up sweeps: every row says how many seeds it rests on, a row
made of the convergence run's own runs says so, and BaseLine's peak in steps is given with its
interval, not extrapolated to a batch size."""
import json
import os
import shutil

from benchmarks.report import build as report
from benchmarks.folders import lane_file
from benchmarks.report.load import load_sweep
from benchmarks.report.sweep_section import sweep_section
from tests.test_cut_runs import fake_run

SEEDS = [0, 1]


def fake_sweep(folder, conv, peak_ci, reuse=True):
    """sweep.json for batches 64 and 256 at rates 0 and 0.5, and lane histories: batch 64's copied
    from the convergence run `conv` (as --reuse does) when `reuse`, batch 256's its own."""
    stat = lambda m, ci: {"mean": m, "ci95": ci, "n": len(SEEDS)}  # noqa: E731
    rates = {"0": {"final_val_acc": stat(0.567, 0.01), "best_val_loss": stat(1.1, 0.01),
                   "peak_epoch": stat(15.0, peak_ci)},
             "0.5": {"final_val_acc": stat(0.612, 0.01), "best_val_loss": stat(1.09, 0.01),
                     "peak_epoch": stat(90.0, 5.0), "ahead_of_baseline": {"first": 30, "from": 37}}}
    summary = {str(b): {"epochs": 100, "rates": rates, "steps_per_epoch": 40000 // b, "lanes": "trained"}
               for b in (64, 256)}
    os.makedirs(folder, exist_ok=True)
    json.dump({"command": "made up", "batches": [64, 256], "rates": [0.0, 0.5], "seeds": SEEDS, "epochs": 100,
               "summary": summary, "figures": []}, open(os.path.join(folder, "sweep.json"), "w"))
    other = os.path.join(folder, "other")
    fake_run(other, "flax", 90, 100, seeds=SEEDS)  # different runs: 90 epochs
    for batch, source in ((64, conv if reuse else other), (256, other)):
        for r, model in ((0.0, "baseline"), (0.5, "dropout")):
            for s in SEEDS:
                os.makedirs(os.path.dirname(lane_file(folder, batch, r, s)), exist_ok=True)
                shutil.copy(os.path.join(source, "flax", model, f"seed_{s}", "history.json"),
                            lane_file(folder, batch, r, s))


def section(tmp_path, peak_ci=0.2, reuse=True):
    conv = str(tmp_path / "conv")
    fake_run(conv, "flax", 100, 100, seeds=SEEDS)
    fake_sweep(str(tmp_path / "sweep"), conv, peak_ci, reuse)
    return "\n".join(sweep_section(load_sweep(str(tmp_path / "sweep")), str(tmp_path), conv, SEEDS))


def test_each_row_says_its_seeds_and_a_reused_row_says_it_is_the_same_runs(tmp_path):
    md = section(tmp_path)
    rows = [line for line in md.splitlines() if line.startswith(("| 64 |", "| 256 |"))]
    assert all(r.startswith("| 64 | 2 (the same runs as seeds 0, 1 above) |") for r in rows[:2])
    assert all(r.startswith("| 256 | 2 | ") for r in rows[2:])
    assert "Batch 64's rows are seeds 0, 1 of the convergence run above" in md and "Batch 256's rows" not in md
    assert "| 30 / 37 |" in rows[1]  # the first significant epoch beside the one it stays ahead from
    # control: lanes that are other runs are not called the same runs
    md = section(tmp_path / "own", reuse=False)
    assert "the same runs" not in md and "Batch 64's rows" not in md


def test_steps_to_the_peak_come_with_their_interval_and_no_extrapolated_batch(tmp_path):
    md = section(tmp_path, peak_ci=0.2)
    assert "9375 ± 125 at batch 64 (2 seeds), 2340 ± 31 at batch 256 (2 seeds): the intervals do not overlap" in md
    assert "a batch of about" not in md
    # control: wide intervals cannot tell
    assert "the intervals overlap" in section(tmp_path / "wide", peak_ci=12.0)
