"""REPORT.md's first screen, from made-up results with known answers: each line says what its
section says, and says it in words a reader needs no table for."""
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
    claims = {"flax": [claim("c2", "confirmed", baseline=stat(1.101), dropout=stat(1.275))]}
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
