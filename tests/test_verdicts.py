"""The report's verdicts on made-up curves whose answer is known: each claim can come out
confirmed, refuted or undecided, ties are ties, and the equivalence test tells its four cases apart."""
import numpy as np
import pytest

from benchmarks.report.claims import placed, tutorial_claims
from benchmarks.report.equivalence import correct, equivalence, verdict_of
from benchmarks.report.stats import ahead, paired_greater, seeds_for_equivalence, sign_changes, tost

N_VAL = 1000


def histories(val_correct, train_loss, val_loss):
    """Per-seed histories from [seeds, epochs] arrays (val accuracy given as counts of N_VAL)."""
    return [{"data": {"n_val": N_VAL},
             "epochs": [{"epoch": e + 1, "train_loss": float(t), "val_loss": float(v), "val_acc": c / N_VAL}
                        for e, (c, t, v) in enumerate(zip(cs, ts, vs))]}
            for cs, ts, vs in zip(val_correct, train_loss, val_loss)]


def run(peak, epochs, seeds=6, rng=None):
    """A BaseLine-like run per seed: accuracy rises to its peak epoch, then falls; val loss has its
    minimum there and rises after; train loss falls throughout."""
    rng = rng or np.random.default_rng(0)
    e = np.arange(1, epochs + 1)
    peaks = np.broadcast_to(peak, (seeds,))
    acc = np.stack([600 - 0.02 * (e - p) ** 2 + rng.integers(0, 3, epochs) for p in peaks]).astype(int)
    val_loss = np.stack([1.0 + 0.001 * (e - p) ** 2 for p in peaks])
    train_loss = np.tile(2.0 / e, (seeds, 1))
    return acc, train_loss, val_loss


def flat_run(level, epochs, seeds=6, train=1.4):
    """A Dropout-like run: accuracy constant at `level` (plus noise), no overfitting, slower train loss."""
    rng = np.random.default_rng(1)
    acc = level + rng.integers(0, 3, (seeds, epochs))
    val_loss = np.tile(1.2 - 0.1 * np.linspace(0, 1, epochs), (seeds, 1))
    return acc, np.full((seeds, epochs), train), val_loss


def claims(base, drop):
    return {c["id"]: c["verdict"] for c in tutorial_claims(histories(*base), histories(*drop))}


def test_the_tutorial_s_own_story_is_confirmed():
    """BaseLine peaks at 50 and is still ahead at 100; Dropout ahead only from epoch 250 of 300."""
    epochs = 300
    base = run(50, epochs)
    drop_acc = np.where(np.arange(1, epochs + 1) < 250, base[0] - 20, base[0] + 20)
    drop = (drop_acc, base[1] + 0.5, np.tile(1.2 - 0.1 * np.linspace(0, 1, epochs), (6, 1)))
    v = claims(base, drop)
    assert v["a1"] == v["a2"] == v["b"] == v["c1"] == v["d1"] == "confirmed"
    assert v["a3"] == "confirmed"  # at epoch 100, the tutorial's, BaseLine is still ahead (at 300 it is not)


def test_an_early_peak_and_an_early_overtake_are_refuted():
    base = run(15, 100)
    v = claims(base, flat_run(560, 100))
    assert v["a2"] == "refuted" and v["d1"] == "refuted" and v["a3"] == "refuted"


def test_a_peak_whose_interval_straddles_the_window_is_undecided():
    base = run(np.array([20, 35, 50, 65, 30, 55]), 100)
    assert claims(base, flat_run(560, 100))["a2"] == "undecided"


def test_never_ahead_in_a_run_too_short_is_undecided():
    base = run(50, 100)
    assert claims(base, flat_run(400, 100))["d1"] == "undecided"


def test_placed():
    assert placed({"mean": 50, "ci95": 5}, (40, 60)) == "inside"
    assert placed({"mean": 16, "ci95": 8}, (40, 60)) == "outside"
    assert placed({"mean": 28.7, "ci95": 19}, (40, 60)) == "overlaps"


def test_ties_are_neither_side():
    """Equal counts (the float means of equal counts can differ by 1e-16) are not a crossing."""
    assert sign_changes([3, 0, 2, 0, -1, 0, 0, -2, 4]) == [5, 9]
    assert sign_changes([0, 0, 0]) == []
    counts = np.array([[500, 500], [501, 501]])
    assert paired_greater(counts, counts).tolist() == [1.0, 1.0]
    a = ahead(counts, counts)
    assert a["first"] is None and a["from"] is None and a["mean_crossings"] == []


def test_ahead_counts_only_significant_epochs_after_correction():
    rng = np.random.default_rng(2)
    b = 500 + rng.integers(-3, 4, (8, 30))
    lead = np.where(np.arange(30) < 10, -1, np.where(np.arange(30) < 20, 0, 15))  # behind, tied, ahead
    a = ahead(b + lead, b)
    assert a["first"] == 21 and a["from"] == 21 and a["share_after_first"] == 1.0
    assert a["mean_crossings"] == [21]


@pytest.mark.parametrize("shift, noise, n, expected", [
    (0.0, 0.1, 12, "equivalent"),
    (0.5, 0.05, 12, "equivalent"),                        # a real difference, but inside the margin
    (3.0, 0.1, 12, "not equivalent"),
    (1.0, 0.2, 12, "differs, within margin not shown"),   # different from 0, straddles the margin
    (0.0, 2.0, 3, "not shown"),
])
def test_equivalence_tells_its_four_cases_apart(shift, noise, n, expected):
    rng = np.random.default_rng(3)
    a, b = rng.normal(shift, noise, n), rng.normal(0.0, noise, n)
    assert verdict_of(tost(a, b, margin=1.0)) == expected


def test_seeds_for_equivalence_grow_with_spread_and_vanish_beyond_the_margin():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.2, 1.0, 8), rng.normal(0.0, 1.0, 8)
    tight, loose = seeds_for_equivalence(a / 4, b / 4, 1.0), seeds_for_equivalence(a, b, 1.0)
    assert 2 <= tight < loose
    assert seeds_for_equivalence(a + 5, b, 1.0) is None
    # the estimate is honest: with that many seeds a TOST does show equivalence most of the time
    n = seeds_for_equivalence(a, b, 1.0)
    shown = [tost(rng.normal(0.2, 1.0, n), rng.normal(0.0, 1.0, n), 1.0)["equivalent"] for _ in range(400)]
    assert 0.7 < np.mean(shown) < 0.95


def test_equivalence_rows_cover_checkpoints_and_curve_means_with_corrected_differences():
    rng = np.random.default_rng(5)

    def runs(shift):
        acc = 600 + rng.integers(-2, 3, (10, 100))
        loss = 1.0 + shift + rng.normal(0, 0.002, (10, 100))
        return histories(acc, loss, loss)

    same = {fw: {"baseline": runs(0.0), "dropout": runs(0.0)} for fw in ("flax", "torch")}
    rows = equivalence(same)
    assert [r["epoch"] for r in rows[:4]] == [10, 50, 100, "1–100 (mean)"] and len(rows) == 24
    assert all(r["verdict"] == "equivalent" for r in rows)
    shifted = {"flax": {"baseline": runs(0.1), "dropout": runs(0.0)}, "torch": same["torch"]}
    loss_rows = [r for r in equivalence(shifted) if r["model"] == "baseline" and "loss" in r["metric"]]
    assert all(r["verdict"] == "not equivalent" and r["p_two_bh"] < 0.05 for r in loss_rows)


def test_a_val_loss_still_falling_is_not_overfitting_though_it_ends_above_its_minimum():
    """'Last minus minimum' cannot be negative: noise alone puts the last epoch above the minimum.
    a1 tests the slope over the last epochs instead, which a falling curve fails."""
    rng = np.random.default_rng(6)
    acc, train_loss, _ = run(15, 100)
    noise = rng.normal(0, 0.05, (6, 100))
    falling = 2.0 - 0.002 * np.arange(100) + noise
    rise = falling[:, -1] - falling.min(axis=1)
    assert paired_greater(rise, np.zeros(6)) < 0.05  # the old test: 'significantly above its minimum'
    a1 = next(c for c in tutorial_claims(histories(acc, train_loss, falling), histories(*flat_run(560, 100)))
              if c["id"] == "a1")
    assert a1["numbers"]["above_min"]["mean"] > 0 and a1["verdict"] == "refuted"
    # control: the same noise on a clearly rising end is overfitting
    rising = 2.0 + 0.02 * np.arange(100) + noise
    assert claims((acc, train_loss, rising), flat_run(560, 100))["a1"] == "confirmed"


def test_b_says_it_is_tested_only_within_the_epochs_run_and_c2_leads_c1():
    short = {c["id"]: c for c in tutorial_claims(histories(*run(15, 100)), histories(*flat_run(560, 100)))}
    assert short["b"]["claim"].endswith("(tested within 100 epochs)")
    assert "epochs after 100 (the tutorial's 200–300) are not tested here" in short["b"]["evidence"]
    assert list(short).index("c2") < list(short).index("c1") and "by construction" in short["c1"]["claim"]
    # control: a run through 300 epochs covers the tutorial's window and does not say so
    long = {c["id"]: c for c in tutorial_claims(histories(*run(15, 300)), histories(*flat_run(560, 300)))}
    assert "not tested here" not in long["b"]["evidence"]


def test_equivalence_and_difference_are_corrected_by_one_rule():
    """A row that passes alone, at p = 0.04 in either direction, does not pass among 23 rows that show
    nothing: the TOST is corrected as the difference test is. Its CI still excluding 0 is flagged."""
    rng = np.random.default_rng(7)

    def row(p, p_two, ci):
        return {"p": p, "p_two": p_two, "p_beyond": 0.9, "ci90": ci, **{k: None for k in ("equivalent", "different")}}

    def table(first):
        return correct([first] + [row(rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9), (-1.0, 1.0)) for _ in range(23)])

    for first, alone in ((row(0.04, 0.9, (-0.2, 0.3)), "equivalent"),
                         (row(0.9, 0.04, (0.1, 0.9)), "differs, within margin not shown")):
        assert correct([dict(first)])[0]["verdict"] == alone  # control: alone it passes
        assert table(dict(first))[0]["verdict"] == "not shown"
    flagged = table(row(0.9, 0.04, (0.1, 0.9)))
    assert flagged[0]["zero_outside_ci"] and not any(r["zero_outside_ci"] for r in flagged[1:])


def test_the_share_ahead_after_the_first_epoch_leaves_the_first_out():
    b = 500 + np.random.default_rng(8).integers(-3, 4, (8, 11))
    lead = np.where(np.arange(11) == 0, 30, np.where(np.arange(11) % 2 == 1, 30, -5))  # epoch 1, then every other
    a = ahead(b + lead, b)
    assert a["first"] == 1 and a["share_after_first"] == 0.5  # 5 of the 10 epochs after it; with it, 6 of 11
    assert ahead(b + 30, b)["share_after_first"] == 1.0  # control: ahead throughout


def test_the_generated_verdict_line_names_each_row_under_its_own_verdict():
    from benchmarks.report.sections import verdicts_line

    def rows(p_first):
        return correct([{"model": m, "metric": "val loss", "epoch": 10, "p": p, "p_two": 0.9, "p_beyond": 0.9,
                         "ci90": (-0.1, 0.1)} for m, p in (("baseline", p_first), ("dropout", 0.5))])

    line = verdicts_line(rows(0.001))
    assert "— equivalent: baseline val loss at epoch 10 —" in line
    assert "not shown: dropout val loss at epoch 10." in line
    assert "Closest to equivalence: baseline val loss at epoch 10 (corrected TOST p = 0.002)" in line
    # control: when neither passes, both are 'not shown' and none is called equivalent
    assert "equivalent: none" in verdicts_line(rows(0.4)) and "not shown: all 2" in verdicts_line(rows(0.4))


def with_eval_train(hs, train_eval_loss):
    """The histories with a train_eval_loss column ([seeds, epochs]), as --eval-train records it."""
    for h, losses in zip(hs, train_eval_loss):
        for row, v in zip(h["epochs"], losses):
            row["train_eval_loss"] = float(v)
    return hs


def test_c1e_judges_the_eval_mode_training_loss_where_it_was_measured():
    base, drop = run(15, 20), flat_run(560, 20)
    noise = np.random.default_rng(3).normal(0, 0.01, (6, 20))
    b_eval = 1.5 - 0.02 * np.arange(20) + noise
    slower = {c["id"]: c for c in tutorial_claims(with_eval_train(histories(*base), b_eval),
                                                   with_eval_train(histories(*drop), b_eval + 0.2))}
    assert slower["c1e"]["verdict"] == "confirmed" and "eval mode" in slower["c1e"]["claim"]
    assert list(slower).index("c2") < list(slower).index("c1e") < list(slower).index("c1")
    # control: the same train-mode curves, but Dropout's eval-mode loss falls as fast: refuted, while c1 still confirms
    same = {c["id"]: c for c in tutorial_claims(with_eval_train(histories(*base), b_eval),
                                                 with_eval_train(histories(*drop), b_eval - 0.05))}
    assert same["c1e"]["verdict"] == "refuted" and same["c1"]["verdict"] == "confirmed"
    # runs that did not measure it get no c1e at all, not a made-up one
    assert "c1e" not in {c["id"] for c in tutorial_claims(histories(*base), histories(*drop))}
