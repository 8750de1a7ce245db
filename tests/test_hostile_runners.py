"""The benchmark runners under attack: bad arguments are one line before anything runs, a failed
training command is a non-zero exit, a retrained seed never reports its old evaluation, finished runs
are never relabelled with another batch size, data or length, and a killed sweep resumes only the
lanes it was asked for. Each a case that failed on the code before it."""
import json
import os
import types

import pytest

from benchmarks.runners import convergence, speed, sweep, wall
from benchmarks.folders import evaluation_of, lane_file, seed_dir

RUNNERS = {"convergence": convergence.main, "sweep": sweep.main, "speed": speed.main, "wall": wall.main}
BAD = [
    ("convergence", ["--frameworks", "jax"]), ("convergence", ["--epochs", "0"]),
    ("convergence", ["--batch-size", "x"]), ("convergence", ["--data", "no-such-file"]),
    ("convergence", ["--out", "a-file"]),
    ("sweep", ["--batches", "64,x"]), ("sweep", ["--epochs", "-1"]), ("sweep", ["--reuse", "nowhere"]),
    ("sweep", ["--data", "no-such-file"]), ("sweep", ["--out", "a-file/below"]),
    ("speed", ["--models", "lenet"]), ("speed", ["--batches", "0"]), ("speed", ["--variants", "bogus"]),
    ("speed", ["--images", "0"]), ("speed", ["--out", "a-file"]),
    ("wall", ["--seeds", "0"]), ("wall", ["--epochs", "1,2,3"]), ("wall", ["--repo", "nolabel"]),
    ("wall", ["--lanes", "1,a"]), ("wall", ["--data", "no-such-file"]),
]


@pytest.mark.parametrize("runner,argv", BAD, ids=[f"{r} {' '.join(a)}" for r, a in BAD])
def test_a_bad_argument_is_one_line_before_anything_runs(runner, argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    if "--out" not in argv and runner != "speed":
        argv = [*argv, "--out", "out"]
    with pytest.raises(SystemExit) as e:
        RUNNERS[runner](argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(f"benchmarks.runners.{runner}: error: "), err
    assert sorted(os.listdir(tmp_path)) == ["a-file"]  # nothing written, no "skipped" row recorded


def test_a_failed_training_command_is_a_non_zero_exit(tmp_path, capfd):
    (tmp_path / "junk.bin").write_text("not data")
    with pytest.raises(SystemExit) as e:
        convergence.main(["--frameworks", "torch", "--seeds", "0", "--epochs", "1", "--data", str(tmp_path / "junk.bin"),
                          "--out", str(tmp_path / "conv")])
    err = capfd.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and err[-1].startswith("benchmarks.runners.convergence: error: torch_ref.train failed with exit 2")
    assert "Traceback" not in "\n".join(err)


def test_an_evaluation_older_than_its_checkpoint_is_not_reported(tmp_path):
    folder = tmp_path / "seed_0"
    folder.mkdir()
    (folder / "evaluation.json").write_text(json.dumps({"test_acc": 0.5}))
    (folder / "best.pt").write_text("")
    os.utime(folder / "evaluation.json", ns=(1, 1))
    assert evaluation_of(str(folder), ".pt") is None  # stale: the checkpoint was rewritten after it
    os.utime(folder / "evaluation.json")
    os.utime(folder / "best.pt", ns=(1, 1))
    assert evaluation_of(str(folder), ".pt") == {"test_acc": 0.5}  # control
    os.remove(folder / "best.pt")  # committed results keep evaluations without their checkpoints
    assert evaluation_of(str(folder), ".pt") == {"test_acc": 0.5}


TORCH_RUN = ["--frameworks", "torch", "--seeds", "0", "--data", "synthetic:300", "--batch-size", "32"]


@pytest.mark.slow  # several training runs
def test_a_retrained_seed_reports_its_own_test_accuracy_and_no_run_is_relabelled(tmp_path, capsys):
    out = str(tmp_path / "conv")
    convergence.main([*TORCH_RUN, "--epochs", "1", "--out", out])
    ev_path = os.path.join(seed_dir(out, "torch", "baseline", 0), "evaluation.json")
    ev = json.load(open(ev_path))
    json.dump({**ev, "test_acc": 0.123}, open(ev_path, "w"))  # marks the old evaluation
    summary = open(os.path.join(out, "convergence.json")).read()
    for other in (["--batch-size", "16"], ["--data", "synthetic:400"]):  # another setting, same folder
        argv = [*TORCH_RUN, "--epochs", "1", "--out", out]
        argv[argv.index(other[0]) + 1] = other[1]
        with pytest.raises(SystemExit) as e:
            convergence.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and "was trained " in err, err
        assert open(os.path.join(out, "convergence.json")).read() == summary
    convergence.main([*TORCH_RUN, "--epochs", "2", "--out", out])  # retrained in the same folder
    result = json.load(open(os.path.join(out, "convergence.json")))
    new = json.load(open(ev_path))["test_acc"]
    assert new != 0.123 and result["torch"]["per_seed"]["baseline"][0]["test_acc"] == new


def fake_lane(path, epochs, batch=32, data="synthetic:300"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump({"framework": "flax", "config": {"batch_size": batch, "data": data}, "data": {"source": data},
               "epochs": [{"epoch": e + 1} for e in range(epochs)]}, open(path, "w"))


def test_reuse_takes_only_a_run_of_the_same_length_batch_and_data(tmp_path):
    conv = str(tmp_path / "conv")
    os.makedirs(conv)
    json.dump({"batch_size": 32}, open(os.path.join(conv, "convergence.json"), "w"))
    a = types.SimpleNamespace(reuse=[conv], rates=[0.0, 0.5], seeds=[0], epochs=2, data="synthetic:300",
                              out=str(tmp_path / "sweep"))
    for epochs, data, taken in ((3, "synthetic:300", False), (2, "synthetic:400", False), (2, "synthetic:300", True)):
        for m in ("baseline", "dropout"):
            fake_lane(os.path.join(seed_dir(conv, "flax", m, 0), "history.json"), epochs, data=data)
        assert (sweep.reusable(a, 32)[0] == conv) == taken, (epochs, data)


def test_a_sweep_takes_the_main_runs_rates_and_trains_only_the_others(tmp_path, monkeypatch):
    conv = str(tmp_path / "conv")
    os.makedirs(conv)
    json.dump({"batch_size": 32}, open(os.path.join(conv, "convergence.json"), "w"))
    for m in ("baseline", "dropout"):
        fake_lane(os.path.join(seed_dir(conv, "flax", m, 0), "history.json"), 2)
    out = str(tmp_path / "sweep")
    a = types.SimpleNamespace(reuse=[conv], rates=[0.0, 0.25, 0.5], seeds=[0], epochs=2, data="synthetic:300",
                              out=out, flax_args="")
    trained = []
    monkeypatch.setattr(sweep.subprocess, "run", lambda cmd, check: trained.append(cmd))
    made = sweep.run_batch(a, 32)
    assert len(trained) == 1 and trained[0][trained[0].index("--dropout-rates") + 1] == "0.25", trained
    assert made == f"trained; rates 0, 0.5 from {conv}"
    for r in (0.0, 0.5):  # taken after the others trained
        assert json.load(open(lane_file(out, 32, r, 0))) == json.load(open(
            os.path.join(seed_dir(conv, "flax", "baseline" if r == 0 else "dropout", 0), "history.json")))
    fake_lane(os.path.join(seed_dir(conv, "flax", "dropout", 0), "history.json"), 3)  # control: another length
    trained.clear()
    sweep.run_batch(types.SimpleNamespace(**{**vars(a), "out": str(tmp_path / "sweep2")}), 32)
    assert trained[0][trained[0].index("--dropout-rates") + 1] == "0,0.25,0.5"


def test_a_sweep_never_relabels_finished_lanes_of_other_data(tmp_path, capsys):
    out = str(tmp_path / "sweep")
    for r in ("baseline", "dropout"):
        fake_lane(os.path.join(out, "batch_32", r, "seed_0", "history.json"), 1, data="synthetic:400")
    with pytest.raises(SystemExit) as e:
        sweep.main(["--batches", "32", "--seeds", "0", "--epochs", "1", "--data", "synthetic:300", "--out", out])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "was trained on 'synthetic:400'" in err


def killed_flax_run(out, rates, epochs_done, epochs_planned):
    """What a sweep's training command killed after `epochs_done` of `epochs_planned` epochs leaves."""
    from flax_impl import train
    train.main(["--dropout-rates", rates, "--seeds", "0", "--epochs", str(epochs_done), "--batch-size", "32",
                "--data", "synthetic:300", "--out", out, "--no-progress"])
    run_json = os.path.join(out, "run.json")
    run = json.load(open(run_json))
    run["args"]["epochs"] = epochs_planned
    json.dump(run, open(run_json, "w"))


@pytest.mark.slow  # three Flax training runs
def test_a_killed_sweep_resumes_only_the_lanes_it_is_asked_for(tmp_path, capfd):
    out = str(tmp_path / "sweep")
    killed_flax_run(os.path.join(out, "batch_32"), "0,0.5", 1, 2)
    capfd.readouterr()
    sweep.main(["--batches", "32", "--rates", "0,0.25", "--seeds", "0", "--epochs", "2", "--data", "synthetic:300",
                "--out", out])  # other rates: trained afresh, not the old lanes resumed
    assert "resuming" not in capfd.readouterr().out
    assert set(json.load(open(os.path.join(out, "sweep.json")))["summary"]["32"]["rates"]) == {"0", "0.25"}
    one = str(tmp_path / "one")
    killed_flax_run(os.path.join(one, "batch_32"), "0.5", 1, 2)
    capfd.readouterr()
    sweep.main(["--batches", "32", "--rates", "0.5", "--seeds", "0", "--epochs", "2", "--data", "synthetic:300",
                "--out", one])  # a one-rate sweep keeps its train state in its rate's folder
    assert "resuming at epoch 2" in capfd.readouterr().out


def test_the_same_archive_at_another_path_is_the_same_data(tmp_path):
    from benchmarks.runners.args import clash
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder, size in (("a", 10), ("b", 10)):
        (tmp_path / folder / "cifar.tar.gz").write_bytes(b"x" * size)
    (tmp_path / "other.tar.gz").write_bytes(b"x" * 11)
    h = {"config": {"batch_size": 64, "data": str(tmp_path / "a" / "cifar.tar.gz")},
         "data": {"source": str(tmp_path / "a" / "cifar.tar.gz")}}
    assert clash(h, 64, str(tmp_path / "b" / "cifar.tar.gz")) is None  # as on another machine
    assert "was trained on" in clash(h, 64, str(tmp_path / "other.tar.gz"))
    assert "was trained on" in clash(h, 64, "synthetic:300")
    assert "was trained at batch 64" in clash(h, 32, str(tmp_path / "a" / "cifar.tar.gz"))
    gone = {"config": {"batch_size": 64, "data": "/no/such/place.tar.gz"}, "data": {"source": "/no/such/place.tar.gz"}}
    assert clash(gone, 64, str(tmp_path / "other.tar.gz")) is None  # nothing left to compare: not judged a clash
