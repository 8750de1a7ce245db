"""The report's eval-mode section says whether the --eval-train runs repeat the main runs (made-up histories)."""
from benchmarks.report.eval_train import repeats


def history(model, seed, losses, processor="Xeon"):
    return {"model": model, "seed": seed, "machine": {"processor": processor, "cores": 2},
            "epochs": [{"train_loss": v, "train_acc": 0.5, "val_loss": v, "val_acc": 0.5} for v in losses]}


def test_runs_that_repeat_the_main_runs_are_told_apart_from_runs_that_do_not():
    main = [history("baseline", s, [2.0, 1.5, 1.2, 1.0]) for s in range(3)]
    same = [history("baseline", s, [2.0, 1.5]) for s in range(3)]
    assert repeats(same, main) == (0.0, 3, 0, None)
    # control: one seed's second epoch differs (another machine's rounding), and it is counted and sized
    other = same[:2] + [history("baseline", 2, [2.0, 1.5 + 3e-7], processor="EPYC")]
    worst, compared, moved, first = repeats(other, main)
    assert compared == 3 and moved == 1 and first == 2 and abs(worst - 3e-7) < 1e-12
