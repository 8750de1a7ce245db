"""The next steps a run prints work as printed, typed into a new shell: the end-of-run "test them:"
command, the "to go on:" command of a finished run and the "continue with:" command after Ctrl-C.
None of them names the data: a run remembers where its data is (run.json, relative to the run
folder, checked by its fingerprint), so they work without --data or $CIFAR10, also from another
folder. A source that moved or changed is one line naming it. evaluate writes beside a run's
checkpoint, or under runs/ for a checkpoint of no run, and what the commands write by default is
ignored by git."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from experiment.sources.synthetic import make_synthetic
from tests.conftest import EVALUATE, EXT, REPO, TRAIN, refused, snapshot, tar_folder, write_imagefolder

PROGS = {"flax": "flax_impl", "torch": "torch_ref"}


@pytest.fixture
def fresh_shell(tmp_path):
    """A new shell's environment: no $CIFAR10, `python` the project's, the checkout importable."""
    env = {k: v for k, v in os.environ.items() if k != "CIFAR10"}
    env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""), PYTHONPATH=REPO,
               PYTHONUNBUFFERED="1")
    return env


def data_tar(folder, n_train=300, seed=7):
    """A small image-folder tar: a data source that is a file, so a run can remember its path."""
    images = write_imagefolder(make_synthetic(n_train, 60, seed=seed), str(folder / f"images-{seed}"))
    path = tar_folder(images, str(folder / "data.tar.gz"))
    shutil.rmtree(images)
    return path


def shell(command, cwd, env, ok=True):
    r = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert r.returncode == 0, f"{command}\n{r.stderr[-2000:]}"
    return r


def printed(text, before, after="$"):
    """The command the output prints after `before` (up to `after`)."""
    match = re.search(re.escape(before) + r"(.+?)" + after, text, re.M)
    assert match, f"no {before!r} in:\n{text}"
    return match.group(1)


@pytest.mark.slow  # a run and the commands it prints, each a process of its own
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_test_them_and_to_go_on_run_as_printed(fw, tmp_path, fresh_shell):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    data_tar(a)
    r = shell(f"python -m {PROGS[fw]}.train --data data.tar.gz --out run --model baseline --epochs 1 --no-progress",
              a, fresh_shell)
    shell(printed(r.stdout, "test them: "), a, fresh_shell)
    evaluation = json.load(open(a / "run" / "baseline" / "evaluation.json"))
    assert os.path.samefile(a / evaluation["data"], a / "data.tar.gz")
    # From another folder: the run's data is found relative to the run, not to where it started.
    r = shell(f"python -m {PROGS[fw]}.train --resume ../a/run --no-progress", b, fresh_shell)
    go_on = printed(r.stdout, "(to go on: ", r", N > 1\)")
    assert go_on == f"python -m {PROGS[fw]}.train --resume ../a/run --epochs N"
    shell(go_on.replace("--epochs N", "--epochs 2"), b, fresh_shell)
    assert len(json.load(open(a / "run" / "baseline" / "history.json"))["epochs"]) == 2


@pytest.mark.slow  # a run stopped by Ctrl-C and its resume, processes of their own
def test_continue_with_after_ctrl_c_runs_as_printed(tmp_path, fresh_shell):
    data_tar(tmp_path)
    # As the README starts a run: the data in $CIFAR10 (relative), which the new shell does not have.
    # 60 steps an epoch: Ctrl-C at the first epoch's line lands long before the 8th epoch ends.
    p = subprocess.Popen(["bash", "-c", "CIFAR10=data.tar.gz exec python -m torch_ref.train --out run --model baseline "
                          "--batch-size 4 --epochs 8 --no-progress"], cwd=tmp_path, env=fresh_shell, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in p.stdout:
        if "epoch 1/8" in line:
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err[-2000:]
    shell(printed(err, "continue with: "), tmp_path, fresh_shell)
    assert len(json.load(open(tmp_path / "run" / "baseline" / "history.json"))["epochs"]) == 8


@pytest.fixture
def remembered_run(tmp_path, monkeypatch):
    """A finished tiny PyTorch run on data.tar.gz, given relatively, with no $CIFAR10."""
    monkeypatch.delenv("CIFAR10", raising=False)
    data_tar(tmp_path)
    TRAIN["torch"](["--data", "data.tar.gz", "--out", "run", "--model", "baseline", "--epochs", "1", "--no-progress"])
    return tmp_path / "run"


def test_a_moved_data_source_is_one_line_naming_it(remembered_run, tmp_path, capsys):
    os.rename(tmp_path / "data.tar.gz", tmp_path / "moved.tar.gz")
    err = refused(TRAIN["torch"], ["--resume", "run", "--epochs", "2"], str(remembered_run), capsys)
    assert "data.tar.gz" in err and "--data" in err
    err = refused(EVALUATE["torch"], ["--ckpt", "run/baseline/best.pt"], str(remembered_run), capsys)
    assert "data.tar.gz" in err and "--data" in err


def test_changed_data_at_the_same_path_is_one_line_naming_it(remembered_run, tmp_path, capsys):
    data_tar(tmp_path, seed=8)  # other images, same name
    err = refused(TRAIN["torch"], ["--resume", "run", "--epochs", "2"], str(remembered_run), capsys)
    assert "data.tar.gz is not what this run trained on" in err
    err = refused(EVALUATE["torch"], ["--ckpt", "run/baseline/best.pt"], str(remembered_run), capsys)
    assert "data.tar.gz" in err and "changed" in err
    # control: named on the command line, other data is evaluated (a test set of the user's choice)
    EVALUATE["torch"](["--ckpt", "run/baseline/best.pt", "--data", "data.tar.gz"])


def test_a_damaged_run_file_beside_a_checkpoint_is_one_line(remembered_run, capsys):
    (remembered_run / "run.json").write_text("{not json")
    err = refused(EVALUATE["torch"], ["--ckpt", "run/baseline/best.pt"], str(remembered_run), capsys)
    assert "run.json is unreadable" in err and "pass --data" in err
    EVALUATE["torch"](["--ckpt", "run/baseline/best.pt", "--data", "data.tar.gz"])  # control


def test_data_given_to_the_run_beats_cifar10_set_later(remembered_run, monkeypatch, capsys):
    """$CIFAR10 stands for the data only where the run was started on it (then the run's own copy is
    the fallback): a run given --data keeps it."""
    monkeypatch.setenv("CIFAR10", "synthetic:400")  # other data: resuming on it would be refused
    TRAIN["torch"](["--resume", "run", "--epochs", "2", "--no-progress"])
    assert "resuming at epoch 2" in capsys.readouterr().out


def test_checkpoints_of_runs_on_different_data_need_data_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CIFAR10", raising=False)
    for n in (300, 400):
        TRAIN["torch"](["--data", f"synthetic:{n}", "--out", f"run{n}", "--model", "baseline", "--epochs", "1",
                        "--no-progress"])
    ckpts = ["run300/baseline/best.pt", "run400/baseline/best.pt"]
    err = refused(EVALUATE["torch"], ["--ckpt", *ckpts], str(tmp_path), capsys)
    assert "trained on different data" in err and "--data" in err
    EVALUATE["torch"](["--ckpt", *ckpts, "--data", "synthetic:300"])  # control: named, both are evaluated
    assert all(os.path.exists(os.path.join(os.path.dirname(c), "evaluation.json")) for c in ckpts)


def test_a_checkpoint_of_no_run_is_evaluated_into_runs_not_the_current_folder(run_copy, tmp_path, capsys):
    shutil.copy(os.path.join(run_copy("torch"), "baseline", "best.pt"), "dropout.pt")  # its weights alone
    before = set(os.listdir("."))
    EVALUATE["torch"](["--ckpt", "dropout.pt", "--data", "synthetic:300"])
    assert set(os.listdir(".")) == before | {"runs"}
    where = os.path.join("runs", "evaluate", "dropout")
    assert sorted(os.listdir(where)) == ["confusion_matrix.png", "evaluation.json"]
    assert f"wrote {where}/evaluation.json" in capsys.readouterr().out


@pytest.mark.parametrize("path", ["runs/flax/run.json", "runs/torch/dropout/seed_3/best.json",
                                  "runs/evaluate/dropout/evaluation.json", "runs/evaluate/x/confusion_matrix.png",
                                  "runs/flax/baseline/curves.png"])
def test_what_the_commands_write_by_default_is_ignored_by_git(path):
    r = subprocess.run(["git", "-C", REPO, "check-ignore", "-q", "--no-index", path], capture_output=True, text=True)
    assert r.returncode == 0, f"{path} is not ignored by git"


def test_a_file_the_user_made_is_not_ignored():  # control: the check can fail
    r = subprocess.run(["git", "-C", REPO, "check-ignore", "-q", "--no-index", "notes/evaluation.json"])
    assert r.returncode == 1
