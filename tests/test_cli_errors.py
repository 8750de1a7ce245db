"""Bad flags and inputs: exit code 2, one line on stderr, no traceback, nothing overwritten."""
import os
import subprocess
import sys

import pytest

from flax_impl import evaluate as flax_evaluate
from flax_impl import train as flax_train
from torch_ref import evaluate, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fails(main, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, expected", [
    (["--model", "lenet"], "invalid choice: 'lenet'"),
    (["--epochs", "0"], "must be > 0"),
    (["--batch-size", "-3"], "must be > 0"),
    (["--batch-size", "5000"], "larger than the"),
    (["--dropout-rate", "1.0"], "must be in [0, 1)"),
    (["--val-fraction", "1.5"], "must be in (0, 1)"),
    (["--device", "mps"], "invalid choice: 'mps'"),
    (["--data", "/nonexistent/cifar"], "does not exist"),
    (["--seed", "x"], "invalid int value"),
    (["--subset", "1"], "--subset must be between 2"),
])
@pytest.mark.parametrize("main", [train.main, flax_train.main], ids=["torch", "flax"])
def test_bad_train_flags(main, argv, expected, tmp_path, capsys):
    err = fails(main, ["--data", "synthetic:1000", "--out", str(tmp_path / "o"), *argv], capsys)
    assert expected in err
    assert not os.path.exists(tmp_path / "o" / "baseline" / "history.json")


def test_flax_device_that_is_not_there(tmp_path, capsys):
    import jax
    missing = next(d for d in ("tpu", "gpu") if d != jax.default_backend())
    err = fails(flax_train.main, ["--data", "synthetic:500", "--device", missing, "--out", str(tmp_path)], capsys)
    assert f"JAX sees no {missing}" in err


def test_flax_rejects_unconvertible_torch_checkpoint(tmp_path, capsys):
    import torch
    torch.save({"model": "baseline", "state_dict": {"conv1.weight": torch.zeros(6, 3, 5, 5)}}, tmp_path / "x.pt")
    err = fails(flax_evaluate.main, ["--ckpt", str(tmp_path / "x.pt"), "--data", "synthetic:500"], capsys)
    assert "not convertible" in err


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    out = str(tmp_path / "o")
    train.main(["--data", "synthetic:500", "--out", out, "--model", "baseline", "--epochs", "1", "--no-progress"])
    before = open(os.path.join(out, "baseline", "history.json")).read()
    err = fails(train.main, ["--data", "synthetic:500", "--out", out, "--model", "baseline", "--epochs", "1"], capsys)
    assert "already holds a run" in err
    assert open(os.path.join(out, "baseline", "history.json")).read() == before


@pytest.mark.parametrize("content, expected", [
    (b"\x00garbage" * 100, "not a readable PyTorch checkpoint"),
    (None, "does not exist"),
])
def test_bad_checkpoint(content, expected, tmp_path, capsys):
    ckpt = tmp_path / "best.pt"
    if content is not None:
        ckpt.write_bytes(content)
    assert expected in fails(evaluate.main, ["--ckpt", str(ckpt), "--data", "synthetic:500"], capsys)


def test_checkpoint_of_other_shapes(tmp_path, capsys):
    import torch
    from torch_ref.models import BaseLineModel
    sd = BaseLineModel().state_dict()
    sd["fc1.weight"] = torch.zeros(120, 500)
    torch.save({"model": "baseline", "state_dict": sd}, tmp_path / "x.pt")
    err = fails(evaluate.main, ["--ckpt", str(tmp_path / "x.pt"), "--data", "synthetic:500"], capsys)
    assert "does not fit the baseline architecture" in err


def test_real_cli_prints_one_line_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "torch_ref.train", "--data", str(tmp_path / "missing")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"torch_ref.train: error: data source '{tmp_path / 'missing'}' "
                                             f"does not exist; expected " + r.stderr.split("expected ", 1)[1].strip()]
    assert "Traceback" not in r.stderr
