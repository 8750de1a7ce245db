"""The bad-input catalogue (docs/robustness.md, "Bad input"): every case, in both frameworks, exits with code 2,
prints one line that names the problem and no traceback, and leaves the output folder, which
holds a finished run, byte for byte as it was."""
import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiment.frameworks import FRAMEWORKS
from experiment.sources.official import write_official
from tests.conftest import EVALUATE, EXT, OTHER, REPO, TINY_RUN, TRAIN, refused, tar_folder, write_imagefolder


@pytest.fixture(scope="session")
def bad_data(tmp_path_factory):
    """Data sources that are wrong in one way each."""
    from experiment.sources.synthetic import make_synthetic
    tiny = make_synthetic(200, 50, seed=7)
    d = tmp_path_factory.mktemp("bad-data")
    official = write_official(tiny, str(d / "cifar-10-python.tar.gz"))
    blob = open(official, "rb").read()
    paths = {"missing": str(d / "missing.tar.gz"), "truncated": str(d / "truncated" / "cifar-10-python.tar.gz"),
             "corrupt": str(d / "corrupt.tar.gz")}
    os.makedirs(os.path.dirname(paths["truncated"]))
    open(paths["truncated"], "wb").write(blob[: len(blob) // 2])
    open(paths["corrupt"], "wb").write(np.random.default_rng(0).bytes(50_000))
    paths["wrong_size"] = write_imagefolder(tiny, str(d / "wrong-size"))
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(os.path.join(paths["wrong_size"], "train", "cat", "x.png"))
    paths["missing_class"] = write_imagefolder(tiny, str(d / "missing-class"))
    shutil.rmtree(os.path.join(paths["missing_class"], "train", "frog"))
    paths["no_class_tar"] = tar_folder(paths["missing_class"], str(d / "missing-class.tar.gz"))
    return paths


# (case, extra argv; {data}, {out}, {other}, {tmp} are filled in, expected text). The run's own
# flags come first, so a case's flag overrides them; --overwrite is added unless the case is about it.
TRAIN_CASES = [
    ("unknown model", ["--model", "lenet"], "argument --model: invalid choice: 'lenet'"),
    ("epochs 0", ["--epochs", "0"], "argument --epochs: must be in [1, 100,000], got 0"),
    ("epochs negative", ["--epochs", "-5"], "argument --epochs: must be in [1, 100,000], got -5"),
    ("epochs beyond reason", ["--epochs", "99999999999999999999"], "argument --epochs: must be in [1, 100,000]"),
    ("too many lanes", ["--seeds", ",".join(map(str, range(1025)))], "1,025 lanes (models or rates x seeds)"),
    ("batch size 0", ["--batch-size", "0"], "argument --batch-size: must be > 0"),
    ("batch size not a number", ["--batch-size", "big"], "argument --batch-size: expected an integer, got 'big'"),
    ("batch larger than the data", ["--batch-size", "5000"], "--batch-size 5000 is larger than the 240 training"),
    ("dropout rate 1", ["--dropout-rate", "1.0"], "argument --dropout-rate: must be in [0, 1)"),
    ("dropout rate negative", ["--dropout-rate", "-0.1"], "argument --dropout-rate: must be in [0, 1)"),
    ("val fraction above 1", ["--val-fraction", "1.5"], "argument --val-fraction: must be in (0, 1)"),
    ("val fraction 0", ["--val-fraction", "0"], "argument --val-fraction: must be in (0, 1)"),
    ("unknown device", ["--device", "mps"], "argument --device: invalid choice: 'mps'"),
    ("learning rate 0", ["--lr", "0"], "argument --lr: must be a finite number > 0"),
    ("learning rate nan", ["--lr", "nan"], "argument --lr: must be a finite number > 0"),
    ("subset of 1 image", ["--subset", "1"], "--subset must be between 2"),
    ("seeds malformed", ["--seeds", "0,x"], "expected comma-separated integers like 0,1,2, got '0,x'"),
    ("seeds empty", ["--seeds", ""], "expected comma-separated integers like 0,1,2, got ''"),
    ("seeds repeated", ["--seeds", "1,1"], "repeated seed in '1,1'"),
    ("missing data path", ["--data", "{data[missing]}"], "does not exist"),
    ("unknown data source", ["--data", "synthetic:many"], "synthetic:N needs an integer"),
    ("truncated archive", ["--data", "{data[truncated]}"], "truncated or corrupt archive"),
    ("corrupt archive", ["--data", "{data[corrupt]}"], "truncated or corrupt archive"),
    ("image of the wrong size", ["--data", "{data[wrong_size]}"], "is 28x28, expected 32x32"),
    ("folder with a missing class", ["--data", "{data[missing_class]}"], "train/ has no images of class frog"),
    ("archive with a missing class", ["--data", "{data[no_class_tar]}"], "train/ has no images of class frog"),
    ("output folder holds another run", ["NO-OVERWRITE"], "already holds a run; pass --resume"),
    ("resume and overwrite", ["--resume", "{out}"], "--resume and --overwrite contradict"),
    ("resume a folder with no run", ["NO-OVERWRITE", "--resume", "{tmp}"], "no run.json there"),
    ("resume with other settings", ["NO-OVERWRITE", "--resume", "{out}", "--batch-size", "32"],
     "drop --batch-size 32"),
    ("resume the other framework's run", ["NO-OVERWRITE", "--resume", "{other}"], "it is a {other_fw} run"),
    ("resume from a corrupt train state", ["NO-OVERWRITE", "CORRUPT-STATE", "--resume", "{out}", "--epochs", "2"],
     "is not a readable"),
    ("resume of an empty folder name", ["NO-OVERWRITE", "--resume", ""], "--resume needs the folder"),
    ("seed negative", ["--seed", "-1"], "argument --seed: must be in [0, 2**32), got -1"),
    ("split seed negative", ["--split-seed", "-1"], "argument --split-seed: must be in [0, 2**32), got -1"),
    ("seed 2**64", ["--seed", str(2**64)], "argument --seed: must be in [0, 2**32)"),
    ("seeds out of range", ["--seeds", "0,4294967296"], "must be in [0, 2**32)"),
    ("empty data source", ["--data", ""], "the data source is empty"),
    ("empty output folder name", ["--out", ""], "--out is empty"),
    ("synthetic data too large", ["--data", "synthetic:10000000"], "N in [10, 100,000]"),
    ("dropout rates malformed", ["--dropout-rates", "0,x"], "expected comma-separated rates in [0, 1)"),
    ("dropout rates out of range", ["--dropout-rates", "0,1.5"], "expected comma-separated rates in [0, 1)"),
    ("dropout rates repeated", ["--dropout-rates", "0,0.5,0.5"], "repeated rate in '0,0.5,0.5'"),
    ("dropout rates with --model", ["--dropout-rates", "0,0.5"], "--dropout-rates trains the BaseLine"),
    ("unknown precision", ["--precision", "bf16"], "argument --precision: invalid choice: 'bf16'"),
    ("nan learning rate written out", ["--lr", "1e309"], "argument --lr: must be a finite number > 0"),
    ("val fraction nan", ["--val-fraction", "nan"], "argument --val-fraction: must be in (0, 1)"),
]


@pytest.mark.parametrize("case, extra, expected", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_train_refuses(fw, case, extra, expected, run_copy, bad_data, tmp_path, capsys):
    out, other = run_copy(fw), run_copy(OTHER[fw])
    if "CORRUPT-STATE" in extra:
        open(os.path.join(out, "baseline", "train_state" + EXT[fw]), "wb").write(b"\x93garbage" * 64)
    fill = dict(data=bad_data, out=out, other=other, tmp=str(tmp_path), other_fw=OTHER[fw])
    overwrite = [] if "NO-OVERWRITE" in extra else ["--overwrite"]
    extra = [a.format(**fill) for a in extra if a not in ("NO-OVERWRITE", "CORRUPT-STATE")]
    base = [] if "--resume" in extra else [*TINY_RUN, "--out", out]
    err = refused(TRAIN[fw], [*base, *overwrite, *extra], out, capsys)
    assert expected.format(**fill) in err
    assert err.startswith(f"{FRAMEWORKS[fw].train}: error: ")


FRESH_CASES = [c for c in TRAIN_CASES if not any(m in a for a in c[1] for m in ("{out}", "{other}", "{tmp}", "NO-"))]


@pytest.mark.parametrize("case, extra, expected", FRESH_CASES, ids=[c[0] for c in FRESH_CASES])
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_train_refused_into_a_new_folder_creates_nothing(fw, case, extra, expected, bad_data, tmp_path, capsys):
    """--out names a folder that does not exist (nor its parent): a refusal, even one found while
    decoding the data, leaves no folder behind."""
    new = tmp_path / "new"
    extra = [a.format(data=bad_data) for a in extra]
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", str(new / "run"), *extra], str(new), capsys)
    assert expected in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_the_real_problem_is_named_before_the_folder_that_holds_a_run(fw, run_copy, bad_data, capsys):
    """The output folder holds a run and no --resume or --overwrite is given, but the data or the
    device is wrong: that is the error (fixing the folder first would only meet it next)."""
    import jax
    import torch
    out = run_copy(fw)
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", out, "--data", bad_data["missing"]], out, capsys)
    assert "does not exist" in err
    missing = next(d for d in ("tpu", "gpu") if d != jax.default_backend()) if fw == "flax" else \
        ("tpu" if torch.cuda.is_available() else "gpu")
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", out, "--device", missing], out, capsys)
    assert f"--device {missing}: " in err and "already holds a run" not in err


def test_unreadable_data(run_copy, bad_data, monkeypatch, capsys):
    # Root reads anything, so permission bits cannot make a file unreadable here: simulate what
    # the OS answers a normal user.
    out = run_copy("torch")
    monkeypatch.setattr("experiment.data.os.access", lambda path, mode: False)
    err = refused(TRAIN["torch"], [*TINY_RUN, "--data", bad_data["wrong_size"], "--out", out, "--overwrite"],
                  out, capsys)
    assert "is not readable" in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_read_only_output_folder(fw, run_copy, monkeypatch, capsys):
    out = run_copy(fw)
    real_open = open

    def read_only(path, mode="r", *a, **k):  # what a read-only mount answers (root ignores chmod)
        if "w" in mode and str(path).startswith(out):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", read_only)
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", out, "--overwrite"], out, capsys)
    assert "cannot write to output folder" in err and "Read-only file system" in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_full_disk(fw, run_copy, monkeypatch, capsys):
    out = run_copy(fw)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("experiment.atomic.os.fsync", no_space)
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", out, "--overwrite"], out, capsys)
    assert "No space left on device" in err and "previous file, if any, is unchanged" in err
    assert not [f for _, _, fs in os.walk(out) for f in fs if f.startswith(".tmp-")]


def _torch_checkpoint_of_other_shapes(path):
    import torch

    from torch_ref.models import BaseLineModel
    sd = BaseLineModel().state_dict()
    sd["fc1.weight"] = torch.zeros(120, 500)
    torch.save({"model": "baseline", "state_dict": sd}, path)


def _unconvertible_torch_checkpoint(path):
    import torch
    torch.save({"model": "baseline", "state_dict": {"conv1.weight": torch.zeros(6, 3, 5, 5)}}, path)


def _truncated(src):
    def write(path):
        blob = open(src, "rb").read()
        open(path, "wb").write(blob[: len(blob) // 2])
    return write


# (case, framework of the evaluate CLI, file name, writer(path) or None, expected text)
EVALUATE_CASES = [
    ("missing checkpoint", "torch", "gone.pt", None, "does not exist"),
    ("missing checkpoint", "flax", "gone.msgpack", None, "does not exist"),
    ("random bytes", "torch", "x.pt", lambda p: open(p, "wb").write(os.urandom(4096)),
     "is not a readable PyTorch checkpoint"),
    ("random bytes", "flax", "x.msgpack", lambda p: open(p, "wb").write(os.urandom(4096)),
     "is not a readable Flax checkpoint"),
    ("truncated", "torch", "t.pt", "TRUNCATED", "is not a readable PyTorch checkpoint"),
    ("truncated", "flax", "t.msgpack", "TRUNCATED", "is not a readable Flax checkpoint"),
    ("other framework, not convertible", "torch", "best.msgpack", "COPY-FLAX", "is a Flax checkpoint; evaluate it"),
    ("other framework, not convertible", "flax", "x.pt", _unconvertible_torch_checkpoint, "not convertible"),
    ("other shapes", "torch", "x.pt", _torch_checkpoint_of_other_shapes, "does not fit the baseline architecture"),
    ("other shapes", "flax", "x.pt", _torch_checkpoint_of_other_shapes, "does not fit the architecture"),
    ("a train state, not a checkpoint", "torch", "train_state.pt", "STATE", "not a checkpoint of this project"),
    ("a train state, not a checkpoint", "flax", "train_state.msgpack", "STATE", "not a Flax checkpoint"),
]


@pytest.mark.parametrize("case, fw, name, writer, expected", EVALUATE_CASES,
                         ids=[f"{c[1]}-{c[0]}" for c in EVALUATE_CASES])
def test_evaluate_refuses(case, fw, name, writer, expected, run_copy, capsys):
    out = run_copy(fw)
    folder = os.path.join(out, "baseline")
    path = os.path.join(folder, name)
    if writer == "TRUNCATED":
        writer = _truncated(os.path.join(folder, "best" + EXT[fw]))
    elif writer == "COPY-FLAX":
        writer = lambda p: shutil.copy(os.path.join(run_copy("flax"), "baseline", "best.msgpack"), p)  # noqa: E731
    if writer not in (None, "STATE"):
        writer(path)
    err = refused(EVALUATE[fw], ["--ckpt", path, "--data", "synthetic:300"], out, capsys)
    assert expected in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
@pytest.mark.parametrize("data, says", [("missing", "does not exist"), ("corrupt", "truncated or corrupt archive")])
def test_evaluate_refused_creates_no_output_folder(fw, data, says, run_copy, bad_data, tmp_path, capsys):
    ckpt = os.path.join(run_copy(fw), "baseline", "best" + EXT[fw])
    new = tmp_path / "new"
    err = refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", bad_data[data], "--out", str(new / "eval")], str(new),
                  capsys)
    assert says in err


@pytest.mark.slow  # processes of their own
def test_real_cli_prints_one_line_without_traceback(tmp_path):
    """The same path through `python -m`, not only in-process."""
    for prog in (f.train for f in FRAMEWORKS.values()):  # the default --out, in this test's own folder
        r = subprocess.run([sys.executable, "-m", prog, "--data", str(tmp_path / "missing")], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        want = f"{prog}: error: data source '{tmp_path / 'missing'}' does not exist; expected "
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith(want), r.stderr
        assert os.listdir(tmp_path) == [], "a refused run left files behind"


def test_flax_device_that_is_not_there(run_copy, capsys):
    import jax
    out = run_copy("flax")
    missing = next(d for d in ("tpu", "gpu") if d != jax.default_backend())
    err = refused(TRAIN["flax"], [*TINY_RUN, "--device", missing, "--out", out, "--overwrite"], out, capsys)
    assert f"JAX sees no {missing}" in err
