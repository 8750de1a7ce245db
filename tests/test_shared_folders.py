"""An output folder shared by two runs, and a resumed run given other data: refused in one line."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from experiment.sources.official import write_official
from experiment.sources.synthetic import make_synthetic
from tests.conftest import REPO, TRAIN

pytestmark = pytest.mark.slow  # a real second process holds the folder
SLOW_RUN = ["--data", "synthetic:1500", "--model", "dropout", "--epochs", "30", "--no-progress"]


def refused_while_busy(main, argv, capsys):
    """exit 2 and one line (the folder is in use, so it may change meanwhile: not compared)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_folder_in_use_is_refused_and_freed_when_its_run_dies(tmp_path, capsys):
    out = str(tmp_path / "run")
    first = subprocess.Popen([sys.executable, "-m", "torch_ref.train", *SLOW_RUN, "--out", out], cwd=REPO,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in first.stdout:
        if "epoch 1/" in line:
            break
    holder = f"is in use by another run (pid {first.pid} on "
    assert holder in refused_while_busy(TRAIN["torch"], [*SLOW_RUN, "--out", out, "--overwrite"], capsys)
    assert holder in refused_while_busy(TRAIN["torch"], ["--resume", out, "--epochs", "31"], capsys)
    first.send_signal(signal.SIGKILL)  # no clean exit: the lock must not outlive the process
    first.wait()
    TRAIN["torch"](["--resume", out, "--epochs", "2", "--no-progress"])
    assert not os.path.exists(os.path.join(out, ".running"))


def test_resume_takes_the_same_data_from_elsewhere_but_not_other_data(tmp_path, capsys):
    for d in "abc":
        os.makedirs(tmp_path / d)
    original = write_official(make_synthetic(300, 60, seed=5), str(tmp_path / "a" / "cifar-10-python.tar.gz"))
    out = str(tmp_path / "run")
    TRAIN["torch"](["--data", original, "--model", "baseline", "--epochs", "1", "--out", out, "--no-progress"])
    moved = str(tmp_path / "b" / "cifar-10-python.tar.gz")
    shutil.move(original, moved)
    TRAIN["torch"](["--resume", out, "--data", moved, "--epochs", "2", "--no-progress"])  # same content: fine
    other = write_official(make_synthetic(300, 60, seed=6), str(tmp_path / "c" / "cifar-10-python.tar.gz"))
    with pytest.raises(SystemExit) as e:
        TRAIN["torch"](["--resume", out, "--data", other, "--epochs", "3", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "is not what this run trained on" in err and len(err.splitlines()) == 1
