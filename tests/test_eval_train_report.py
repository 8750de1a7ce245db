"""The report's eval-mode section says whether the --eval-train runs repeat the main runs (made-up histories)."""
import numpy as np

from benchmarks.report.eval_train import load, repeats, section


def history(model, seed, losses, processor="Xeon"):
    return {"model": model, "seed": seed, "machine": {"processor": processor, "cores": 2},
            "epochs": [{"train_loss": v, "train_acc": 0.5, "val_loss": v, "val_acc": 0.5} for v in losses]}


def test_runs_that_repeat_the_main_runs_are_told_apart_from_runs_that_do_not():
    main = [history("baseline", s, [2.0, 1.5, 1.2, 1.0]) for s in range(3)]
    same = [history("baseline", s, [2.0, 1.5]) for s in range(3)]
    assert [(r.seed, r.epochs, r.worst, r.first, r.moved) for r in repeats(same, main)] == \
        [(s, 2, 0.0, None, False) for s in range(3)]
    # control: one seed's second epoch differs (another machine's rounding), and it is counted and sized
    other = same[:2] + [history("baseline", 2, [2.0, 1.5 + 3e-7], processor="EPYC")]
    last = repeats(other, main)[-1]
    assert (last.seed, last.first, last.moved) == (2, 2, True) and abs(last.worst - 3e-7) < 1e-12


def made_up(tmp_path, name, epochs, shift_seeds=(), config=None, pair_code=None):
    """A torch convergence folder of seeds 0-3: seeds in `shift_seeds` have their val loss 0.01 higher;
    `pair_code`: the seed whose Dropout run records another code version (an extra config field)."""
    from tests.made_up_results import MadeUp, write_folder
    from tests.test_verdicts import flat_run, run
    base, drop = run(15, epochs, 4), flat_run(560, epochs, 4)
    shift = np.array([[0.01 if s in shift_seeds else 0.0] for s in range(4)])
    eval_loss = np.tile(1.5 - 0.02 * np.arange(epochs), (4, 1))
    folder = write_folder(tmp_path / name, {"torch": MadeUp((base[0], base[1], base[2] + shift),
                                                            (drop[0], drop[1], drop[2] + shift), seeds=(0, 1, 2, 3),
                                                            eval_loss=eval_loss if name.startswith("ev") else None,
                                                            config=config or {})})
    if pair_code is not None:
        import json
        import os
        path = os.path.join(folder, "torch", "dropout", f"seed_{pair_code}", "history.json")
        h = json.load(open(path))
        h["config"]["compile"] = False  # a field only the later version writes
        json.dump(h, open(path, "w"))
    return folder


def eval_section(tmp_path, main, ev):
    from benchmarks.folders import convergence_histories
    return "\n".join(section(load(ev), convergence_histories(main)[0]))


def test_the_section_says_which_runs_repeat_the_main_runs_and_which_differ(tmp_path):
    main = made_up(tmp_path, "main", 10, pair_code=1)
    text = eval_section(tmp_path, main, made_up(tmp_path, "ev", 10, shift_seeds=(2, 3)))
    assert "seeds 0–1 (4 runs) repeat their main runs bit for bit over epochs 1–10" in text
    assert "seeds 2–3 (4 runs) differ from epoch 1, by up to 0.01" in text
    assert "not copies of the main runs" not in text
    assert "seed 1: its BaseLine and Dropout main runs, written by two code versions, are both repeated bit for " \
           "bit by one" in text
    # control: where seed 1's runs differ too, nothing is said to be repeated for it
    text = eval_section(tmp_path, main, made_up(tmp_path, "ev2", 10, shift_seeds=(1, 2, 3)))
    assert "seed 1: its BaseLine" not in text and "seeds 0 (2 runs) repeat" not in text
    assert "seed 0 (2 runs) repeat their main runs bit for bit" in text


def test_the_section_compares_the_settings_before_calling_them_the_main_runs_protocol(tmp_path):
    main = made_up(tmp_path, "main", 2, config={"batch_size": 64, "lr": 0.001})
    other = eval_section(tmp_path, main, made_up(tmp_path, "ev", 3, config={"batch_size": 32, "lr": 0.001}))
    assert "the main runs' protocol (same seeds, data and settings)" not in other
    assert "batch_size 32 (main runs: 64)" in other
    assert "over epochs 1–2 (the main runs have 2)" in other and "epochs 1–3" not in other
    # control: the same settings are said to be the same protocol
    same = eval_section(tmp_path, main, made_up(tmp_path, "ev2", 3, config={"batch_size": 64, "lr": 0.001}))
    assert "the main runs' protocol (same seeds, data and settings)" in same and "main runs: 64" not in same
