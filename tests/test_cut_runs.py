"""A report never judges what a run did not reach: made-up runs cut short (e.g. 10 of 100 epochs)
for every claim and every convergence-table row, each beside a control whose needed epoch was
reached, so removing a check fails a test."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

from benchmarks.runners import convergence
from benchmarks.report import build as report
from benchmarks.report.claims import NEEDS, need, tutorial_claims
from benchmarks.folders import histories_of, seed_dir
from benchmarks.report.convergence_table import END, ROWS, convergence_table
from benchmarks.report.load import load_sweep
from benchmarks.report.summaries import convergence_summary as summarize
from benchmarks.report.sweep_section import sweep_section
from benchmarks.runners.convergence import stop_reason
from benchmarks.report.equivalence import equivalence, unreached
from tests.test_verdicts import N_VAL, flat_run, histories, run, with_eval_train

BASE, DROP = run(15, 100), flat_run(560, 100)  # an early BaseLine peak; Dropout ahead from early on
EVAL_LOSS = np.tile(1.5 - 0.01 * np.arange(100), (6, 1))  # --eval-train's column (c1e), Dropout's 0.2 above


def cut(hs, reached, planned):
    """The first `reached` epochs of made-up histories, of a run that planned `planned`."""
    return [{**h, "epochs": h["epochs"][:reached], "config": {"epochs": planned}} for h in hs]


def verdicts(reached, planned, base=BASE, drop=DROP, why=None):
    """Every claim's verdict on made-up runs that measured the eval-mode training loss too (c1e)."""
    b = cut(with_eval_train(histories(*base), EVAL_LOSS), reached, planned)
    d = cut(with_eval_train(histories(*drop), EVAL_LOSS + 0.2), reached, planned)
    return {c["id"]: c for c in tutorial_claims(b, d, why)}


@pytest.mark.parametrize("claim", sorted(NEEDS))
def test_a_claim_is_not_judged_one_epoch_before_it_needs_and_judged_at_it(claim):
    needed = need(claim, 100)
    short = verdicts(needed - 1, 100, why="SIGTERM: a time cap or a kill")[claim]
    assert short["verdict"] == "not judged"
    assert short["evidence"].startswith(f"not reached: needs epoch {needed}; the run stopped at epoch {needed - 1} "
                                        "of 100 (SIGTERM: a time cap or a kill)")
    # control: the same curves, one epoch further, are judged
    assert verdicts(needed, 100)[claim]["verdict"] in ("confirmed", "refuted", "undecided")


def test_ten_of_a_hundred_epochs_judges_only_the_early_claims():
    v = verdicts(10, 100)
    assert {c for c in v if v[c]["verdict"] == "not judged"} == {"a1", "a2", "a3", "b", "d1", "d2"}
    assert v["c1"]["verdict"] == v["c1e"]["verdict"] == v["c2"]["verdict"] == "confirmed"
    assert v["a3"]["claim"].endswith("at epoch 100")  # the claim is about the planned end, not epoch 10
    # control: a run that planned 10 epochs and finished them is judged on every claim
    assert "not judged" not in {c["verdict"] for c in verdicts(10, 10).values()}


def test_a_peak_inside_the_window_is_not_confirmed_while_a_later_one_could_come():
    base = run(50, 100)
    assert verdicts(70, 100, base=base)["a2"]["verdict"] == "undecided"
    assert verdicts(70, 70, base=base)["a2"]["verdict"] == "confirmed"  # control: the run ended there


def test_claims_compare_both_models_at_the_epochs_both_reached():
    """PyTorch's tutorial engine trains one model after the other: BaseLine may have all 100 epochs
    while Dropout has 10. The claims see 10 of 100 for both."""
    b = cut(histories(*BASE), 100, 100)
    d = cut(histories(*DROP), 10, 100)
    v = {c["id"]: c for c in tutorial_claims(b, d)}
    assert v["a1"]["verdict"] == "not judged" and "stopped at epoch 10 of 100" in v["a1"]["evidence"]
    assert {c["verdict"] for c in tutorial_claims(b, cut(histories(*DROP), 100, 100))} != {"not judged"}


def test_equivalence_uses_only_the_epochs_both_frameworks_reached():
    full = {m: cut(histories(*x), 100, 100) for m, x in (("baseline", BASE), ("dropout", DROP))}
    short = {m: cut(hs, 10, 100) for m, hs in full.items()}
    rows = equivalence({"flax": full, "torch": short})
    assert {r["epoch"] for r in rows} == {10, "1–10 (mean)"} and unreached(rows) == [50, 100]
    rows = equivalence({"flax": full, "torch": full})  # control
    assert {r["epoch"] for r in rows} == {10, 50, 100, "1–100 (mean)"} and unreached(rows) == []


def fake_run(out, fw, reached, planned, seeds=(0, 1), base=BASE, drop=DROP):
    """Made-up seed histories on disk, as a training run writes them."""
    for m, curves in (("baseline", base), ("dropout", drop)):
        for s, h in zip(seeds, cut(histories(*curves), reached, planned)):
            h = {**h, "framework": fw, "model": m, "seed": s, "device": "cpu:cpu",
                 "machine": {"processor": "made-up", "cores": 2},
                 "data": {"n_train": 4 * N_VAL, "n_val": N_VAL, "n_test": N_VAL},
                 "epochs": [{**e, "train_acc": 0.5, "seconds": 1.0} for e in h["epochs"]]}
            os.makedirs(seed_dir(out, fw, m, s), exist_ok=True)
            json.dump(h, open(os.path.join(seed_dir(out, fw, m, s), "history.json"), "w"))


def table_rows(out, fw, planned, stopped):
    seeds = [0, 1]
    conv = {"seeds": seeds, **summarize(out, [fw], seeds, planned, stopped)}
    hs = histories_of(out, conv, [fw])
    lines = convergence_table(conv, [fw], report.extents(hs)).splitlines()
    return lines[0], {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines[2:]}


def test_a_table_cell_for_an_epoch_not_reached_says_so(tmp_path):
    base = (BASE[0], BASE[1] + np.arange(100) * 1e-3, BASE[2])  # each epoch's train loss its own value
    drop = flat_run(400, 100)  # never reaches 45% val accuracy
    fake_run(str(tmp_path / "cut"), "torch", 10, 100, base=base, drop=drop)
    header, rows = table_rows(str(tmp_path / "cut"), "torch", 100, "SIGTERM: a time cap or a kill")
    assert "torch BaseLine (10 of 100 epochs)" in header
    by_need = {label: needs for label, _, _, _, _, needs in ROWS}
    for label, cells in rows.items():
        needs = by_need.get(label, None)
        needed = 100 if needs == END else needs
        if needed is not None and needed > 10:
            assert all(c.startswith("not reached (10 of 100 epochs)") for c in cells), label
        else:
            assert not any("not reached" in c for c in cells), label
    epoch_10 = f"{base[1][0, 9]:.3f}"
    assert rows["train loss after 10 epochs"][0].startswith(epoch_10)
    assert not any(epoch_10 in c for label, cells in rows.items() if "after 50" in label or "after 100" in label
                   for c in cells)
    assert rows["epochs to 55% val acc"][1].startswith("not within 10 epochs")
    assert rows["test accuracy (best-val-loss checkpoint)"][0].startswith("not evaluated")
    # control: a run that planned 10 epochs has its last epoch, and 'never' is never within the run
    fake_run(str(tmp_path / "whole"), "torch", 10, 10, base=base, drop=drop)
    header, rows = table_rows(str(tmp_path / "whole"), "torch", 10, None)
    assert "(10" not in header and rows["epochs to 55% val acc"][1].startswith("never")
    assert not rows["val accuracy, last epoch"][0].startswith("not reached")
    assert rows["train loss after 50 epochs"][0].startswith("not reached (10 epochs)")


def test_the_header_names_each_run_that_stopped_early_and_why(tmp_path):
    out = str(tmp_path / "conv")
    fake_run(out, "flax", 100, 100)
    fake_run(out, "torch", 10, 100)
    conv = {"command": "made up", "seeds": [0, 1], "batch_size": 64,
            **summarize(out, ["flax", "torch"], [0, 1], 100, "SIGTERM: a time cap or a kill")}
    json.dump(conv, open(os.path.join(out, "convergence.json"), "w"))
    report.main(["--convergence", out, "--out", str(tmp_path / "rep")])
    text = open(tmp_path / "rep" / "REPORT.md").read()
    assert "- torch, 2 seeds: 10 of 100 epochs, stopped (SIGTERM: a time cap or a kill)" in text
    assert "- flax, 2 seeds" not in text and "epochs: flax 100 epochs, torch 10 of 100 epochs." in text
    assert "Epochs compared: 1–10, those both frameworks reached" in text and "checkpoint epochs 50, 100" in text
    assert "| torch | 0 | epochs 1–10 (10 of 100 epochs) | not evaluated |" in text  # the shipped checkpoint
    torch_claims = text.split("**torch**")[1].split("##")[0]
    assert re.findall(r"\| (a1|a3|b|d1|d2) \|[^\n]*\*\*not judged\*\*", torch_claims) == ["a1", "a3", "b", "d1", "d2"]
    # control: the same runs whole: no early stop, nothing unjudged
    fake_run(out, "torch", 100, 100)
    conv.update(summarize(out, ["torch"], [0, 1], 100, None))
    json.dump(conv, open(os.path.join(out, "convergence.json"), "w"))
    report.main(["--convergence", out, "--out", str(tmp_path / "rep")])
    text = open(tmp_path / "rep" / "REPORT.md").read()
    assert "Every run finished the epochs it planned." in text and "**not judged**" not in text


def test_the_runner_records_planned_epochs_and_why_it_stopped(tmp_path):
    out = str(tmp_path / "conv")
    fake_run(out, "torch", 10, 100)
    why = stop_reason(convergence.Stopped("SIGTERM"))
    s = summarize(out, ["torch"], [0, 1], 100, why)["torch"]
    assert (s["epochs"], s["planned_epochs"], s["stopped"]) == (10, 100, "SIGTERM: a time cap or a kill")
    failed = subprocess.CalledProcessError(1, ["python", "-m", "torch_ref.train", "--epochs", "100"])
    assert stop_reason(failed) == "torch_ref.train failed with exit 1"
    # a train loss at an epoch the run did not reach is None, never an earlier epoch's value
    assert s["per_seed"]["baseline"][0]["train_loss_at_50"] is None
    assert s["per_seed"]["baseline"][0]["train_loss_at_10"] is not None
    # control: a run that has all its epochs did not stop, whatever the runner caught later
    fake_run(out, "torch", 100, 100)
    assert summarize(out, ["torch"], [0, 1], 100, why)["torch"]["stopped"] is None


def fake_sweep(folder, reached_256):
    """A made-up sweep.json: batch 64 whole, batch 256 at `reached_256` of 100 epochs."""
    stat = lambda m: {"mean": m, "ci95": 0.01 * m, "n": 3}  # noqa: E731
    rates = {"0": {"final_val_acc": stat(0.567), "best_val_acc": stat(0.62), "best_val_loss": stat(1.1),
                   "peak_epoch": stat(15.0)},
             "0.5": {"final_val_acc": stat(0.612), "best_val_acc": stat(0.62), "best_val_loss": stat(1.09),
                     "peak_epoch": stat(90.0), "ahead_of_baseline": {"first": 30, "from": 37}}}
    summary = {str(b): {"epochs": e, "rates": rates, "steps_per_epoch": 40000 // b, "lanes": "trained"}
               for b, e in ((64, 100), (256, reached_256))}
    os.makedirs(folder, exist_ok=True)
    json.dump({"command": "made up", "batches": [64, 256], "rates": [0.0, 0.5], "seeds": [0, 1, 2], "epochs": 100,
               "summary": summary, "figures": []}, open(os.path.join(folder, "sweep.json"), "w"))
    return sweep_section(load_sweep(folder), folder)


def test_a_sweep_batch_that_stopped_early_is_not_judged(tmp_path):
    md = "\n".join(fake_sweep(str(tmp_path / "cut"), 40))
    rows = [line for line in md.splitlines() if line.startswith("| 256 |")]
    assert len(rows) == 2 and all("not reached (40 of 100 epochs)" in r and "56.70%" not in r for r in rows)
    assert "not judged (40 of 100 epochs)" in rows[1] and "37 |" not in rows[1]
    assert "- Batch 256 stopped at 40 of 100 epochs: nothing about it is judged." in md
    assert "batch 256:" not in md and "Batch 256: the best" not in md and "at batch 256" not in md
    assert "| 64 | 3 | trained | 15.0 ± 0.1 | 0.5 | 61.20% ± 0.61 | 1.090 ± 0.011 | 30 / 37 |" in md
    # control: the same batch whole is judged like batch 64
    md = "\n".join(fake_sweep(str(tmp_path / "whole"), 100))
    assert "| 256 | 3 | trained | 15.0 ± 0.1 | 0.5 | 61.20% ± 0.61 | 1.090 ± 0.011 | 30 / 37 |" in md
    assert "Batch 256: the best" in md and "not judged" not in md


def test_the_header_names_a_sweep_batch_that_stopped_early(tmp_path):
    conv = str(tmp_path / "conv")
    fake_run(conv, "flax", 100, 100)
    json.dump({"command": "made up", "seeds": [0, 1], "batch_size": 64, **summarize(conv, ["flax"], [0, 1], 100)},
              open(os.path.join(conv, "convergence.json"), "w"))
    for reached, named in ((40, True), (100, False)):  # control: the whole sweep is not named
        fake_sweep(str(tmp_path / "sweep"), reached)
        report.main(["--convergence", conv, "--sweep", str(tmp_path / "sweep"), "--out", str(tmp_path / "rep")])
        text = open(tmp_path / "rep" / "REPORT.md").read()
        assert ("- sweep batch 256, 3 seeds: 40 of 100 epochs, stopped (cause not recorded)" in text) == named
        assert ("Every run finished the epochs it planned." in text) != named


def long_verdicts(reached, why=None):
    """Every claim's verdict on made-up runs of 300 epochs (with c1e's column), cut at `reached`."""
    ev = np.tile(1.5 - 0.001 * np.arange(300), (6, 1))
    b = cut(with_eval_train(histories(*run(15, 300)), ev), reached, 300)
    d = cut(with_eval_train(histories(*flat_run(560, 300)), ev + 0.2), reached, 300)
    return {c["id"]: c for c in tutorial_claims(b, d, why)}


def test_a_long_run_cut_after_epoch_100_is_judged_on_every_claim_whose_epoch_it_reached():
    """A 300-epoch run cut at 168: a1, a3 and b are the tutorial's epoch-100 claims, and d1's early
    overtake (Dropout ahead from an epoch before 200 through 168) refutes 'not before 200' already; d2,
    whose test needs the planned end, waits for it."""
    v = long_verdicts(168, why="SIGTERM: a time cap or a kill")
    judged = {c for c in v if v[c]["verdict"] != "not judged"}
    assert judged == {"a1", "a2", "a3", "b", "c1", "c1e", "c2", "d1"}
    assert v["a3"]["claim"].endswith("at epoch 100") and v["a3"]["evidence"].startswith("at epoch 100 ")
    assert v["d1"]["verdict"] == "refuted"
    assert v["d2"]["evidence"].startswith("not reached: needs epoch 300; the run stopped at epoch 168 of 300")
    # control: cut before epoch 100, the epoch-100 claims wait
    v = long_verdicts(99)
    assert {c for c in v if v[c]["verdict"] == "not judged"} == {"a1", "a3", "b", "d1", "d2"}


def test_the_epoch_100_claims_of_a_finished_long_run_are_judged_at_epoch_100():
    """BaseLine ahead at epoch 100 and Dropout ahead at 300: the tutorial's a3 (at epoch 100) holds."""
    e = np.arange(1, 301)
    base = run(50, 300)
    drop = (np.where(e < 250, base[0] - 20, base[0] + 20), base[1] + 0.5, np.tile(1.2 - 0.1 * e / 300, (6, 1)))
    v = {c["id"]: c for c in tutorial_claims(histories(*base), histories(*drop))}
    assert v["a3"]["verdict"] == "confirmed" and "at epoch 100 BaseLine leads by" in v["a3"]["evidence"]
    assert v["b"]["claim"].endswith("(tested within 100 epochs)")
