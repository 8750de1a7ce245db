"""REPORT.md's first screen, from made-up results with known answers: each line says what its
section says, and says it in words a reader needs no table for."""
import re

import numpy as np

from benchmarks.report import first_screen as fs

ROW = {"model": "dropout", "batch": 64, "precision": "highest"}


def speed(variant, framework, lanes, rate):
    return {**ROW, "variant": variant, "framework": framework, "seeds": lanes, "img_per_s": rate}


def test_flax_is_compared_with_the_fastest_pytorch_at_its_own_lanes():
    rows = [speed("torch-eager", "torch", 1, 100.0), speed("torch-cudagraph", "torch", 1, 400.0),
            speed("flax-scan-matmul", "flax", 1, 800.0), speed("torch-vmap8", "torch", 8, 1000.0),
            speed("flax-scan-matmul-vmap8", "flax", 8, 1500.0), {**speed("torch-cudagraph-vmap8", "torch", 8, 0.0),
                                                                  "skipped": "needs CUDA"}]
    line = fs.speed_line(rows, "one GPU")
    assert "2.00× with 1 lane; 1.50× with 8 lanes" in line and "on one GPU" in line  # not 8.00× (eager)
    assert "Not measured" in fs.speed_line([], "")


def test_agreement_in_plain_words():
    rows = [{"verdict": "not shown"}] * 22 + [{"verdict": "equivalent"}] * 2
    line = fs.agreement_line(rows, 8)
    assert "Over 8 seeds each, the tests found no difference in any of 24 comparisons" in line
    assert "2 of them are shown equivalent" in line and "'not shown'" in line
    differ = fs.agreement_line(rows[:22] + [{"verdict": "not equivalent"}, {"verdict": "differs, within margin "
                                                                                        "not shown"}], 8)
    assert "found a difference in 2 of 24 comparisons" in differ  # control: a difference is never hidden


def claim(claim_id, verdict, **numbers):
    return {"id": claim_id, "verdict": verdict, "numbers": numbers}


def test_what_holds_names_each_claim_and_where_the_frameworks_disagree():
    claims = {"flax": [claim("a1", "confirmed"), claim("d1", "refuted")],
              "torch": [claim("a1", "confirmed"), claim("d1", "not judged")]}
    line = fs.tutorial_line(claims)
    assert "BaseLine overfits: confirmed" in line
    assert "Dropout overtakes at 200–300 (curves cross): flax refuted / torch not judged" in line


def test_how_much_dropout_slows_convergence():
    stat = lambda m: {"mean": m, "ci95": 0.01, "n": 8}  # noqa: E731
    claims = {"flax": [claim("c2", "confirmed", baseline=stat(1.101), dropout=stat(1.275), epoch=10)]}
    conv = {"flax": {"slowdown_dropout_over_baseline": {"epochs_to_45": 1.75, "epochs_to_50": 2.5, "epochs_to_55": None}}}
    line = fs.slowdown_line(claims, conv)
    assert "1.101 ± 0.010 (BaseLine) vs 1.275 ± 0.010 (Dropout), confirmed" in line
    assert "1.8× to 45%, 2.5× to 50%" in line and "55%" not in line  # never reached: not a ratio


def test_a_claim_only_some_frameworks_measured_names_them():
    """Flax trained with --eval-train (claim c1e), PyTorch without: the line says whose verdict it is."""
    both = [{"id": "c2", "verdict": "confirmed"}, {"id": "c1", "verdict": "confirmed"}]
    line = fs.tutorial_line({"flax": [both[0], {"id": "c1e", "verdict": "confirmed"}, both[1]], "torch": both})
    assert "Dropout slows the train loss (eval mode): flax confirmed;" in line
    assert "Dropout slows the train loss (train mode): confirmed (" in line  # control: both measured it, one verdict


def equivalence_row(inside, verdict="not shown"):
    """A row of the equivalence table whose 90% CI lies inside its margin (before correction) or not."""
    return {"verdict": verdict, "margin": 1.0, "ci90": (-0.5, 0.5) if inside else (-0.5, 1.5)}


def test_the_agreement_line_states_the_rule_actually_applied():
    """9 of 24 rows have their whole 90% CI inside the margin and are 'not shown': the correction decides."""
    rows = [equivalence_row(True)] * 9 + [equivalence_row(False)] * 15
    line = fs.agreement_line(rows, 8)
    assert "'Equivalent' needs the whole 90% interval inside the margin" not in line
    assert "after the Benjamini–Hochberg correction across the 24 comparisons" in line
    assert "9 of the 24 have their whole 90% interval inside the margin, but not after the correction" in line
    # control: where no interval lies inside, the line does not say some did
    line = fs.agreement_line([equivalence_row(False)] * 24, 8)
    assert "9 of the 24" not in line and "none has its whole 90% interval inside the margin" in line


def test_the_overtake_line_says_when_dropout_overtook():
    claims = {"flax": [claim("d1", "refuted", first=42, **{"from": 42})],
              "torch": [claim("d1", "refuted", first=33, **{"from": 34})]}
    line = fs.tutorial_line(claims)
    assert "Dropout overtakes at 200–300 (curves cross): refuted: Dropout is significantly ahead from epoch 42 " \
           "(flax) and 34 (torch) on" in line
    # control: never ahead, nothing said about when
    line = fs.tutorial_line({"flax": [claim("d1", "undecided", first=None, **{"from": None})]})
    assert "(curves cross): undecided" in line and "ahead from" not in line


def shipped_conv(leads, seeds=8):
    """convergence.json's per_seed rows of each framework: Dropout's test accuracy `lead` above BaseLine's
    (with noise), its best epoch ~9x later."""
    rng = np.random.default_rng(0)
    conv = {}
    for fw, lead in leads.items():
        base = 0.62 + rng.normal(0, 0.006, seeds)
        noise = rng.normal(0, 0.01, seeds)
        drop = base + lead + noise - noise.mean()  # the mean difference is `lead` exactly
        conv[fw] = {"per_seed": {
            "baseline": [{"test_acc": float(a), "best_val_loss_epoch": 10 + i % 3} for i, a in enumerate(base)],
            "dropout": [{"test_acc": float(a), "best_val_loss_epoch": 90 + i % 5} for i, a in enumerate(drop)]}}
    return conv


def test_the_shipped_line_answers_with_p_values_costs_and_what_the_seeds_could_detect():
    line = fs.shipped_line(shipped_conv({"flax": 0.0, "torch": 0.03}), ["flax", "torch"])
    flax, torch = line.split("torch:")
    assert "Dropout better: p = " in flax and "no difference shown" in flax
    assert "Dropout's checkpoint tests better" in torch and "no difference shown" not in torch
    assert re.search(r"Dropout's checkpoint comes from epoch 9\d\.\d, BaseLine's from 1\d\.\d \(\d\.\d× later\)", flax)
    assert re.search(r"8 seeds detect a difference of \d\.\d\d points or more \(80% power", flax)


def speed_rows():
    return [speed("torch-compile", "torch", 1, 15000.0), speed("torch-vmap8", "torch", 8, 9000.0),
            speed("flax-scan-matmul", "flax", 1, 18000.0), speed("flax-scan-matmul-vmap8", "flax", 8, 13000.0)]


def test_lanes_are_compared_with_the_fastest_way_pytorch_trains_as_many_models():
    """On a CPU 8 one-lane PyTorch runs one after the other beat its vmap engine: that is the reference."""
    line = fs.speed_line(speed_rows(), "a CPU")
    assert "1.20× with 1 lane; 0.87× with 8 lanes" in line and "1.44×" not in line
    assert "for 8 lanes, PyTorch's fastest is one model after the other (torch-compile)" in line
    assert "8 lanes train fewer model-images/s than one lane: Flax 0.72×, PyTorch 0.60×" in line
    # the Speed table shows both: against the same lanes (the engine) and against the fastest way
    from benchmarks.report.speed_table import table
    timed = [{**r, "img_per_s_min": r["img_per_s"], "img_per_s_max": r["img_per_s"], "compile_s": 0.0}
             for r in speed_rows()]
    row = next(line for line in table(timed).splitlines() if "flax-scan-matmul-vmap8" in line)
    assert "| 1.44x (torch-vmap8) | 0.87x (torch-compile, one after the other) |" in row
    # control: where PyTorch's lanes are its fastest way, they are the reference and lanes are not called slower
    rows = speed_rows()[:1] + [speed("torch-vmap8", "torch", 8, 20000.0), *speed_rows()[2:3],
                               speed("flax-scan-matmul-vmap8", "flax", 8, 40000.0)]
    line = fs.speed_line(rows, "a GPU")
    assert "2.00× with 8 lanes" in line and "fastest is its lanes (torch-vmap8)" in line and "fewer" not in line


def test_the_slowdown_line_says_the_epoch_it_measured():
    from benchmarks.report.claims import tutorial_claims
    from tests.test_verdicts import flat_run, histories, run
    claims = {"flax": tutorial_claims(histories(*run(2, 3)), histories(*flat_run(560, 3)))}
    conv = {"flax": {"slowdown_dropout_over_baseline": {"epochs_to_45": None}}}
    line = fs.slowdown_line(claims, conv)
    assert "val loss after 3 epochs" in line and "10 epochs" not in line
    claims = {"flax": tutorial_claims(histories(*run(2, 12)), histories(*flat_run(560, 12)))}  # control
    assert "val loss after 10 epochs" in fs.slowdown_line(claims, conv)


def test_the_ahead_at_the_end_claim_names_the_epoch_it_was_judged_at():
    """A run planned for fewer than the tutorial's 100 epochs is judged on a3 at its own end: the first
    screen says that epoch, as the claim's own sentence does."""
    from benchmarks.report.claims import tutorial_claims
    from tests.test_verdicts import flat_run, histories, run
    claims = {"flax": tutorial_claims(histories(*run(2, 3)), histories(*flat_run(560, 3)))}
    a3 = next(c for c in claims["flax"] if c["id"] == "a3")
    assert "at epoch 3" in a3["claim"]
    line = fs.tutorial_line(claims)
    assert "BaseLine still ahead at epoch 3:" in line and "at epoch 100" not in line
    claims = {"flax": tutorial_claims(histories(*run(2, 120)), histories(*flat_run(560, 120)))}  # control
    assert "BaseLine still ahead at epoch 100:" in fs.tutorial_line(claims)


def test_the_first_screen_leads_with_the_eval_mode_training_loss_where_it_was_measured(tmp_path):
    from tests.made_up_results import MadeUp, built, short, write_folder
    from tests.test_verdicts import flat_run, run
    conv = write_folder(tmp_path / "conv", {fw: MadeUp(run(15, 20), flat_run(560, 20)) for fw in ("flax", "torch")})
    eval_loss = np.tile(1.5 - 0.02 * np.arange(10), (3, 1)) + np.random.default_rng(2).normal(0, 0.01, (3, 10))
    ev = write_folder(tmp_path / "ev", {fw: MadeUp(run(15, 10, 3), flat_run(560, 10, 3), eval_loss=eval_loss)
                                        for fw in ("flax", "torch")})
    said = short(built(tmp_path, "--convergence", conv, "--eval-train", ev))
    assert "Dropout slows the train loss (eval mode, the --eval-train runs): confirmed" in said
    assert said.index("(eval mode") < said.index("(train mode)")
    assert "(eval mode" not in short(built(tmp_path, "--convergence", conv))  # control: not measured, not said
