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
    assert v["verdict"] == "confirmed" and v["numbers"]["first"] == 250 and v["numbers"]["significant_from"] == 250
    assert "BaseLine keeps epoch 12.0 ± 0.0 at 61.00 ± 0.00% val accuracy (its best val accuracy: 62.00" \
        in v["evidence"]
    assert "passes the mean at epoch 250;" in v["evidence"]
    assert "per seed it passes at epoch 250.0 ± 0.0;" in v["evidence"]
    # control: the target is the kept checkpoint's accuracy (610), not the best (620): 605 does not pass it
    below = d2(dropout(605, (250, EPOCHS)))
    assert below["verdict"] == "refuted" and below["numbers"]["first"] is None


def test_not_passing_by_300_refutes_and_a_run_cut_before_300_is_not_judged():
    never = dropout(600)
    v = d2(never)
    assert v["verdict"] == "refuted" and "does not pass the mean by epoch 300" in v["evidence"]
    assert "per seed it passes in no seed, not by epoch 300 in 6 of 6 seeds" in v["evidence"]
    cut_168 = d2(never, reached=168)
    assert cut_168["verdict"] == "not judged" and "does not pass the mean by epoch 168" in cut_168["evidence"]
    # control: the same 168 epochs of a run that planned 168 are judged (too short: undecided)
    assert d2(never, reached=168, planned=168)["verdict"] == "undecided"


def test_passing_then_losing_it_again_is_not_an_overtake():
    lost = d2(dropout(615, (220, 260)))
    assert lost["numbers"]["first"] == 220 and lost["numbers"]["lost_at"] == 261
    assert lost["verdict"] == "refuted"
    assert "passes the mean at epoch 220, below it again at epoch 261, not above it at epoch 300" in lost["evidence"]
    # control: kept to the end from the same epoch, it is an overtake inside 200-300
    held = d2(dropout(615, (220, EPOCHS)))
    assert held["verdict"] == "confirmed" and held["numbers"]["lost_at"] is None


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
