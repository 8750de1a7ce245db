"""Claim d's second reading (d2: Dropout's val accuracy passes that of the checkpoint BaseLine keeps)
and the checkpoint you would ship, on made-up curves whose answer is known."""
import numpy as np
import pytest

from benchmarks.report.claims import tutorial_claims
from benchmarks.report.shipped import shipped
from tests.test_cut_runs import cut
from tests.test_verdicts import histories

SEEDS, EPOCHS = 6, 300
E = np.arange(1, EPOCHS + 1)


def baseline():
    """Best val loss at epoch 12 (610 correct of 1000), best val accuracy at 15 (620), then 580."""
    acc = np.where(E == 15, 620, np.where(E == 12, 610, np.where(E < 12, 500, 580)))
    val_loss = 1.0 + 0.001 * (E - 12) ** 2
    return np.tile(acc, (SEEDS, 1)), np.tile(2.0 / E, (SEEDS, 1)), np.tile(val_loss, (SEEDS, 1))


def dropout(level, window=(1, EPOCHS)):
    """Dropout at `level` correct inside `window` (epochs, inclusive), 590 outside, plus noise."""
    rng = np.random.default_rng(1)
    acc = np.where((E >= window[0]) & (E <= window[1]), level, 590) + rng.integers(0, 3, (SEEDS, EPOCHS))
    return acc, np.full((SEEDS, EPOCHS), 1.4), np.tile(1.2 - 0.1 * E / EPOCHS, (SEEDS, 1))


def d2(drop, reached=EPOCHS, planned=EPOCHS):
    b, d = (cut(histories(*x), reached, planned) for x in (baseline(), drop))
    return next(c for c in tutorial_claims(b, d) if c["id"] == "d2")


def test_passing_the_kept_checkpoint_inside_200_to_300_confirms():
    v = d2(dropout(615, (250, EPOCHS)))
    assert v["verdict"] == "confirmed" and v["numbers"]["significant_from"] == 250 and v["numbers"]["p_end"] < 0.05
    assert "BaseLine keeps epoch 12.0 ± 0.0 at 61.00 ± 0.00% val accuracy (its best val accuracy: 62.00" \
        in v["evidence"]
    assert "at epoch 199 (just before the window) Dropout is below it by" in v["evidence"]
    assert "is below it through epoch 249, and is above it by more than its noise from epoch 250 through 300;" \
        in v["evidence"]
    assert "per seed, all 6 seeds pass it by epoch 300; median epoch 250 (" in v["evidence"]
    # control: the target is the kept checkpoint's accuracy (610), not the best (620): 605 does not pass it
    below = d2(dropout(605, (250, EPOCHS)))
    assert below["verdict"] == "refuted" and below["numbers"]["per_seed"] == [None] * SEEDS


def test_not_passing_by_300_refutes_and_a_run_cut_before_300_is_not_judged():
    never = dropout(600)
    v = d2(never)
    assert v["verdict"] == "refuted" and "mean curve is below it at every epoch through 300" in v["evidence"]
    assert "per seed, no seed passes it by epoch 300;" in v["evidence"]
    cut_168 = d2(never, reached=168)
    assert cut_168["verdict"] == "not judged" and "below it at every epoch through 168" in cut_168["evidence"]
    assert "the pre-stated test at epoch 300, the planned end, waits for it" in cut_168["evidence"]
    # control: the same 168 epochs of a run that planned 168 are judged (too short: undecided)
    assert d2(never, reached=168, planned=168)["verdict"] == "undecided"


def test_passing_then_losing_it_again_is_not_an_overtake():
    lost = d2(dropout(615, (220, 260)))
    assert lost["numbers"]["every_epoch"] == "refuted" and lost["verdict"] == "refuted"
    assert "is below it through epoch 219, is first above it by more than its noise at epoch 220, and is below it " \
           "at epoch 300 (since epoch 261)" in lost["evidence"]
    # control: kept to the end from the same epoch, it is an overtake inside 200-300
    held = d2(dropout(615, (220, EPOCHS)))
    assert held["verdict"] == "confirmed" and "above it by more than its noise from epoch 220 through 300" \
        in held["evidence"]


def test_passing_before_200_refutes_not_before():
    assert d2(dropout(615, (120, EPOCHS)))["verdict"] == "refuted"


def rows(baseline_acc, dropout_acc):
    return {"baseline": [{"test_acc": a} for a in baseline_acc], "dropout": [{"test_acc": a} for a in dropout_acc]}


def test_the_shipped_checkpoints_are_paired_by_seed():
    base = [0.60, 0.62, 0.61, 0.63, 0.605, 0.615]
    s = shipped(rows(base, [a + 0.01 + 0.001 * i for i, a in enumerate(base)]))
    assert s["seeds"] == 6 and s["lead"]["mean"] == pytest.approx(1.25) and s["p_dropout"] < 1e-4
    # control: equal models lead by 0 and neither is better
    same = shipped(rows(base, base))
    assert same["lead"]["mean"] == 0 and same["p_dropout"] == 1.0
    partial = shipped(rows([None, *base[1:]], base))
    assert (partial["seeds"], partial["of"]) == (5, 6)
    assert shipped(rows([None] * 6, base)) is None


def d2_of(drop_acc, epochs=100):
    """d2 of a 100-epoch run: BaseLine keeps 610 correct (epoch 12) in every seed; Dropout's counts given."""
    b = baseline()
    base = tuple(x[:, :epochs] for x in b)
    drop = (np.asarray(drop_acc), np.full((SEEDS, epochs), 1.4), np.tile(1.2 - 0.1 * E[:epochs] / epochs, (SEEDS, 1)))
    return next(c for c in tutorial_claims(histories(*base), histories(*drop)) if c["id"] == "d2")


def at_end(values, epochs=100, before=590):
    """Dropout at `before` correct until the last epoch, then the given per-seed counts."""
    acc = np.full((SEEDS, epochs), before)
    acc[:, -1] = values
    return acc


def test_a_mean_curve_a_hair_above_within_its_noise_is_level_not_past():
    """The audit's case: the mean curve above the kept accuracy by a hair at the last epochs, p ~ 0.5."""
    hair = at_end([640, 580, 640, 580, 611, 610])  # mean 610.17 against 610
    v = d2_of(hair)
    assert "above it from epoch" not in v["evidence"] and "level with it at epoch 100" in v["evidence"]
    # control: every seed clearly above at the end: above, by more than its noise
    clear = d2_of(at_end([630, 632, 631, 629, 633, 630]))
    assert "above it by more than its noise at epoch 100" in clear["evidence"]


def test_the_pre_stated_test_at_the_planned_end_is_the_primary_reading():
    """Above at the planned end alone (p ~ 0.02), too little for the every-epoch reading corrected over 100."""
    v = d2_of(at_end([622, 607, 618, 625, 612, 620]))
    assert v["numbers"]["p_end"] < 0.05 and v["numbers"]["every_epoch"] == "undecided"
    assert v["verdict"] == "refuted"  # passes the kept checkpoint by epoch 100: before 200
    assert "at epoch 100 (the planned end, the pre-stated test)" in v["evidence"]
    assert "every epoch (the stronger reading" in v["evidence"] and ": undecided" in v["evidence"]
    # control: not above at the end: undecided both ways (the run ends before 200)
    v = d2_of(at_end([605, 607, 608, 604, 606, 609]))
    assert v["verdict"] == "undecided" and v["numbers"]["p_end"] > 0.05


def passing_at(epochs_per_seed, epochs=100):
    """Dropout passes 610 from the given epoch in each seed (None: never)."""
    e = np.arange(1, epochs + 1)
    return np.stack([np.where(e >= (p or epochs + 1), 615, 590) for p in epochs_per_seed])


def test_per_seed_passing_counts_the_seeds_that_never_passed_as_not_yet():
    v = d2_of(passing_at([20, 40, 60, 80, None, None]))
    assert "4 of 6 seeds pass it by epoch 100" in v["evidence"]
    assert "median epoch 60 (Kaplan–Meier" in v["evidence"]  # not 50.0, the mean of the 4 that passed
    assert "50.0" not in v["evidence"]
    few = d2_of(passing_at([20, 40, None, None, None, None]))
    assert "2 of 6 seeds pass it by epoch 100" in few["evidence"] and "median: not by epoch 100" in few["evidence"]
    every = d2_of(passing_at([20, 20, 30, 30, 40, 40]))  # control: all passed, the plain median
    assert "all 6 seeds pass it by epoch 100" in every["evidence"] and "median epoch 30 (" in every["evidence"]
