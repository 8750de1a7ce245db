"""The benchmark runners work end to end on tiny configurations (their numbers are not checked; the
speed runner also runs inside the tiny device run, tests/test_device_run.py)."""
import json
import os

import pytest

from benchmarks.folders import seed_dir
from benchmarks.runners import convergence
from benchmarks.runners.args import clear_for_training
from benchmarks.report import build as report


@pytest.mark.slow  # trains both frameworks several times
def test_convergence_resumes_and_report_has_verdicts(tmp_path, capfd):
    out = str(tmp_path / "conv")
    args = ["--seeds", "0,1", "--epochs", "2", "--data", "synthetic:600", "--out", out, "--batch-size", "32"]
    convergence.main(args)
    result = json.load(open(os.path.join(out, "convergence.json")))
    assert set(result) >= {"flax", "torch", "seeds", "command"}
    assert len(result["flax"]["per_seed"]["dropout"]) == 2
    stamp = os.path.getmtime(os.path.join(out, "torch", "baseline", "seed_1", "history.json"))
    os.remove(os.path.join(out, "flax", "dropout", "seed_0", "evaluation.json"))  # as if killed there
    capfd.readouterr()
    convergence.main(args)
    log = capfd.readouterr().out
    assert "torch: all seeds trained, reusing" in log and "flax: all seeds trained, reusing" in log
    assert os.path.exists(os.path.join(out, "flax", "dropout", "seed_0", "evaluation.json"))  # evaluated again
    assert os.path.getmtime(os.path.join(out, "torch", "baseline", "seed_1", "history.json")) == stamp
    # Killed inside a group: its finished epochs are kept, the rest is trained (--resume).
    from torch_ref import train as torch_train
    clear_for_training(os.path.join(out, "torch"), [seed_dir(out, "torch", m, 1) for m in ("baseline", "dropout")])
    torch_train.main(["--model", "both", "--seeds", "1", "--epochs", "1", "--batch-size", "32", "--data",
                      "synthetic:600", "--out", os.path.join(out, "torch"), "--no-progress"])
    run_json = os.path.join(out, "torch", "run.json")
    run = json.load(open(run_json))
    run["args"]["epochs"] = 2  # what a run of 2 epochs killed after its first looks like
    json.dump(run, open(run_json, "w"))
    seed_1 = os.path.join(out, "torch", "dropout", "seed_1")
    first = json.load(open(os.path.join(seed_1, "history.json")))["epochs"][0]
    capfd.readouterr()
    convergence.main([*args, "--one-seed-at-a-time"])
    assert "dropout on cpu, seeds [1], 480 train / 120 val images, resuming at epoch 2" in capfd.readouterr().out
    epochs = json.load(open(os.path.join(seed_1, "history.json")))["epochs"]
    assert len(epochs) == 2 and epochs[0] == first  # epoch 1 (timing included) was not trained again
    report.main(["--convergence", out, "--out", str(tmp_path / "rep")])
    text = open(tmp_path / "rep" / "REPORT.md").read()
    for claim in ("| a1 |", "| a2 |", "| a3 |", "| b |", "| c1 |", "| c2 |", "| d1 |", "| d2 |"):
        assert text.count(claim) == 2, claim  # one verdict per framework
    assert "## Do the frameworks agree? An equivalence test" in text
    assert os.path.getsize(tmp_path / "rep" / "fig_flax_curves.png") > 0


@pytest.mark.slow  # two training runs
def test_sweep_trains_one_program_per_batch_size_and_resumes(tmp_path, capfd):
    from benchmarks.runners import sweep
    out = str(tmp_path / "sweep")
    args = ["--batches", "32,64", "--rates", "0,0.25,0.5", "--seeds", "0,1", "--epochs", "1", "--data", "synthetic:300",
            "--out", out]
    sweep.main(args)
    result = json.load(open(os.path.join(out, "sweep.json")))
    assert set(result["summary"]) == {"32", "64"} and set(result["summary"]["32"]["rates"]) == {"0", "0.25", "0.5"}
    assert os.path.exists(os.path.join(out, "batch_64", "dropout_0.25", "seed_1", "history.json"))
    assert all(os.path.getsize(os.path.join(out, f)) > 0 for f in result["figures"])
    capfd.readouterr()
    sweep.main(args)  # everything done: nothing is trained again
    assert capfd.readouterr().out.count("done, reusing") == 2
    conv = str(tmp_path / "conv")
    convergence.main(["--seeds", "0,1", "--epochs", "1", "--data", "synthetic:300", "--out", conv,
                      "--frameworks", "flax", "--batch-size", "32"])
    report.main(["--convergence", conv, "--sweep", out, "--out", str(tmp_path / "rep")])
    text = open(tmp_path / "rep" / "REPORT.md").read()
    assert "## What the tutorial left unsaid" in text and "the best final val accuracy is at rate" in text


@pytest.mark.slow  # two speed rows, each in a process of its own
def test_wall_times_one_program_of_n_lanes(tmp_path):
    from benchmarks.runners import wall
    out = tmp_path / "lanes"
    wall.main(["--skip-command", "--lanes", "1,2", "--images", "64", "--batch", "32", "--speed-repeats", "1",
               "--out", str(out)])
    rows = json.load(open(out / "wall.json"))["lanes"]
    assert [r["seeds"] for r in rows] == [1, 2] and all(r["img_per_s"] > 0 for r in rows)
    assert "| 2 |" in open(out / "wall.md").read()


def test_report_refuses_missing_or_damaged_results_in_one_line(tmp_path, capsys):
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "convergence.json").write_text('{"seeds": [0]')
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "convergence.json").write_text("[" * 50_000 + "]" * 50_000)
    for folder in ("missing", "damaged", "deep"):
        with pytest.raises(SystemExit) as e:
            report.main(["--convergence", str(tmp_path / folder), "--out", str(tmp_path / "out")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("benchmarks.report: error: cannot build the report") and "Traceback" not in err
    assert not (tmp_path / "out" / "REPORT.md").exists()
