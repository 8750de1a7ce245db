"""Files the project reads are untrusted input too: a hand-edited or damaged run.json, train state or
checkpoint metadata is one line and exit 2, never a traceback, never a run with an invalid setting,
and the output folder stays as it was. So are the edges of the command lines."""
import errno
import json
import os

import numpy as np
import pytest
import torch
from flax import serialization

from tests.conftest import EVALUATE, EXT, TINY_RUN, TRAIN, refused

RESUME = ["--epochs", "2", "--no-progress"]


def edit_json(path, change):
    record = json.load(open(path))
    change(record)
    json.dump(record, open(path, "w"))


def set_arg(key, value):
    return lambda run: run["args"].__setitem__(key, value)


RUN_FILE_CASES = [
    ("epochs not a number", set_arg("epochs", "ten"), "argument --epochs: expected an integer, got 'ten'"),
    ("batch size negative", set_arg("batch_size", -1), "argument --batch-size: must be > 0, got -1"),
    ("unknown model", set_arg("model", "lenet"), "argument --model: invalid choice: 'lenet'"),
    ("learning rate nan", set_arg("lr", "nan"), "argument --lr: must be a finite number > 0"),
    ("seeds not a list", set_arg("seeds", "abc"), "expected comma-separated integers"),
    ("seed negative", set_arg("seed", -3), "argument --seed: must be in [0, 2**32)"),
    ("on/off flag not a bool", set_arg("no_progress", "yes"), "argument --no-progress: ignored explicit argument"),
    ("unknown setting", set_arg("optimizer", "sgd"), "unknown setting 'optimizer'"),
    ("settings not a record", lambda run: run.__setitem__("args", [1, 2]), "run.json is unreadable"),
    ("other data recorded", lambda run: run["data"].__setitem__("fingerprint", "0" * 32),
     "is not what this run trained on"),
]


@pytest.mark.parametrize("case, change, expected", RUN_FILE_CASES, ids=[c[0] for c in RUN_FILE_CASES])
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resume_refuses_a_damaged_run_file(fw, case, change, expected, run_copy, capsys):
    out = run_copy(fw)
    edit_json(os.path.join(out, "run.json"), change)
    err = refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)
    assert expected in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resume_refuses_a_run_file_that_is_not_json(fw, run_copy, capsys):
    out = run_copy(fw)
    open(os.path.join(out, "run.json"), "wb").write(b"\x00\xff\x93not json")
    assert "run.json is unreadable" in refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)


def edit_train_state(fw, out, change):
    """Apply change(raw) to the baseline's train state, as a hand edit or damage would."""
    path = os.path.join(out, "baseline", "train_state" + EXT[fw])
    if fw == "torch":
        raw = torch.load(path, weights_only=True)
        change(raw)
        torch.save(raw, path)
    else:
        raw = serialization.msgpack_restore(open(path, "rb").read())
        change(raw)
        open(path, "wb").write(serialization.msgpack_serialize(raw))


def put_nan(raw):
    if "states" in raw:  # PyTorch: per-lane state_dicts
        raw["states"][0]["model"]["fc1.weight"][0, 0] = float("nan")
    else:  # Flax: the lane-stacked params (read-only arrays: replace the leaf)
        kernel = np.array(raw["state"]["params"]["fc1"]["kernel"])
        kernel[0, 0, 0] = np.nan
        raw["state"]["params"]["fc1"]["kernel"] = kernel


STATE_CASES = [
    ("epoch not a number", lambda raw: raw.__setitem__("epoch", "x"), "its epoch is 'x'"),
    ("epoch negative", lambda raw: raw.__setitem__("epoch", -5), "its epoch is -5"),
    ("histories of other lanes", lambda raw: raw.__setitem__("histories", "[]"), "is a damaged train state"),
    ("a weight is NaN", put_nan, "holds NaN values"),
    ("lanes missing", lambda raw: raw.pop("lanes"), "is a damaged train state"),
]


@pytest.mark.parametrize("case, change, expected", STATE_CASES, ids=[c[0] for c in STATE_CASES])
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resume_refuses_a_damaged_train_state(fw, case, change, expected, run_copy, capsys):
    out = run_copy(fw)
    edit_train_state(fw, out, change)
    err = refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)
    assert expected in err


def edit_checkpoint_meta(fw, path, change):
    if fw == "torch":
        edit_json(path[: -len(".pt")] + ".json", change)  # the .json beside best.pt
        return
    raw = serialization.msgpack_restore(open(path, "rb").read())
    meta = json.loads(raw["meta"])
    change(meta)
    raw["meta"] = json.dumps(meta)
    open(path, "wb").write(serialization.msgpack_serialize(raw))


META_CASES = [
    ("unknown model", lambda m: m.__setitem__("model", "lenet"), "model 'lenet' is not one of baseline, dropout"),
    ("dropout rate out of range", lambda m: m.__setitem__("dropout_rate", 2), "dropout rate 2 is not in [0, 1)"),
    ("dropout rate not a number", lambda m: m.__setitem__("dropout_rate", "half"), "dropout rate 'half' is not"),
    ("fc1 in another layout", lambda m: m["layout"].__setitem__("fc1_inputs", "H,W,C"),
     "fc1 expects its inputs in 'H,W,C' order"),
    ("newer format", lambda m: m.__setitem__("format", 9), "checkpoint format 9"),
]


@pytest.mark.parametrize("case, change, expected", META_CASES, ids=[c[0] for c in META_CASES])
@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_evaluate_refuses_bad_checkpoint_metadata(fw, case, change, expected, run_copy, capsys):
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    edit_checkpoint_meta(fw, ckpt, change)
    assert expected in refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300"], out, capsys)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_evaluate_refuses_nan_weights_by_name(fw, run_copy, capsys):
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    if fw == "torch":
        sd = torch.load(ckpt, weights_only=True)
        sd["conv2.bias"][3] = float("inf")
        torch.save(sd, ckpt)
        os.remove(ckpt[:-3] + ".json")  # the weights alone, as the tutorial saves them
        name = "conv2.bias holds Inf"
    else:
        raw = serialization.msgpack_restore(open(ckpt, "rb").read())
        bias = np.array(raw["params"]["conv2"]["bias"])
        bias[3] = np.inf
        raw["params"]["conv2"]["bias"] = bias
        open(ckpt, "wb").write(serialization.msgpack_serialize(raw))
        name = "conv2/bias holds Inf"
    assert name in refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300"], out, capsys)


def test_a_stale_checkpoint_description_is_ignored_with_a_warning(run_copy, capsys):
    out = run_copy("torch")
    ckpt = os.path.join(out, "baseline", "best.pt")
    edit_json(ckpt[:-3] + ".json", lambda m: m.__setitem__("model", "dropout"))  # still valid, but...
    sd = torch.load(ckpt, weights_only=True)
    sd["fc3.bias"] += 1.0  # ...the weights changed after it was written: its hash no longer matches
    torch.save(sd, ckpt)
    report = EVALUATE["torch"](["--ckpt", ckpt, "--data", "synthetic:300", "--out", str(out + "-eval")])
    assert report["model"] == "LeNet (weights only)"
    assert "describes other weights" in capsys.readouterr().err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_evaluate_out_naming_a_file(fw, run_copy, capsys):
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    target = os.path.join(out, "baseline", "history.json")
    assert "is a file" in refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300", "--out", target],
                                  out, capsys)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_full_disk_while_drawing_a_figure_is_one_line(fw, run_copy, monkeypatch, capsys, tmp_path):
    import matplotlib.figure

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", no_space)
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    err = refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300", "--out", str(tmp_path / "ev")],
                  out, capsys)
    assert "confusion_matrix.png (No space left on device)" in err
    with pytest.raises(SystemExit) as e:
        TRAIN[fw]([*TINY_RUN, "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(lines) == 1 and "curves.png (No space left on device)" in lines[0], lines


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.1:http", "10.0.0.1:0", ":1234"])
def test_coordinator_needs_a_host_and_port(value, run_copy, capsys):
    out = run_copy("flax")
    err = refused(TRAIN["flax"], [*TINY_RUN, "--out", out, "--overwrite", "--coordinator", value,
                                  "--num-processes", "2", "--process-id", "0"], out, capsys)
    assert "argument --coordinator: expected HOST:PORT" in err
