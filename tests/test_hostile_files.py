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
    # The run has 1 epoch: a header saying 0 would train epoch 1 again after it, 2 would skip one.
    ("epoch behind its histories", lambda raw: raw.__setitem__("epoch", 0), "its epoch 0 disagrees with"),
    ("epoch ahead of its histories", lambda raw: raw.__setitem__("epoch", 2), "its epoch 2 disagrees with"),
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


# --- second hostile round ------------------------------------------------------------------------
DEEP_JSON = "[" * 50_000 + "]" * 50_000  # json's recursion gives up long before this


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_run_file_nested_50000_deep_is_one_line(fw, run_copy, capsys):
    out = run_copy(fw)
    open(os.path.join(out, "run.json"), "w").write(DEEP_JSON)
    assert "run.json is unreadable (RecursionError)" in refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_checkpoint_metadata_nested_50000_deep_is_one_line(fw, run_copy, capsys):
    out = run_copy(fw)
    ckpt = os.path.join(out, "baseline", "best" + EXT[fw])
    if fw == "torch":
        open(ckpt[: -len(".pt")] + ".json", "w").write(DEEP_JSON)
    else:
        raw = serialization.msgpack_restore(open(ckpt, "rb").read())
        raw["meta"] = DEEP_JSON
        open(ckpt, "wb").write(serialization.msgpack_serialize(raw))
    assert "RecursionError" in refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300"], out, capsys)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_setting_of_the_wrong_type_in_run_json_is_refused(fw, run_copy, capsys):
    """"64" is not what --batch-size writes: a hand edit, refused as the flags refuse bad values."""
    out = run_copy(fw)
    edit_json(os.path.join(out, "run.json"), set_arg("batch_size", "64"))
    err = refused(TRAIN[fw], ["--resume", out, *RESUME], out, capsys)
    assert "run.json holds batch_size = '64' (str), not what --batch-size gives (64, int)" in err


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_file_names_are_escaped_in_the_one_line(fw, run_copy, capsys, tmp_path, tiny):
    """An image whose name holds a newline and a terminal escape sequence neither breaks the line
    nor reaches the terminal."""
    from PIL import Image

    from tests.conftest import write_imagefolder
    out, data = run_copy(fw), write_imagefolder(tiny, str(tmp_path / "images"))
    Image.new("RGB", (8, 8)).save(os.path.join(data, "train", "cat", "bad\n\x1b[31mred.png"))
    err = refused(TRAIN[fw], [*TINY_RUN, "--out", out, "--overwrite", "--data", data], out, capsys)
    assert "\x1b" not in err and "bad\\n\\x1b[31mred.png is 8x8, expected 32x32" in err


def test_flax_evaluate_refuses_a_state_dict_with_an_extra_tensor(run_copy, capsys):
    """As torch_ref.evaluate does (PyTorch's strict load_state_dict)."""
    out = run_copy("torch")
    ckpt = os.path.join(out, "baseline", "best.pt")
    sd = torch.load(ckpt, weights_only=True)
    ckpt = os.path.join(out, "extra.pt")  # no metadata beside it: the weights alone, as a user's file
    torch.save({**sd, "fc4.weight": torch.zeros(3)}, ckpt)
    for fw in ("flax", "torch"):
        err = refused(EVALUATE[fw], ["--ckpt", ckpt, "--data", "synthetic:300"], out, capsys)
        assert "fc4.weight" in err


@pytest.mark.slow  # two processes of their own
def test_a_plain_pickle_checkpoint_is_one_line_not_three(run_copy, tmp_path):
    """PyTorch warns about the pickle before it refuses it; what the user reads is one line."""
    import pickle
    import subprocess
    import sys

    from tests.conftest import REPO
    path = tmp_path / "plain.pt"
    pickle.dump({"a": 1}, open(path, "wb"))
    for prog in ("torch_ref.evaluate", "flax_impl.evaluate"):
        r = subprocess.run([sys.executable, "-m", prog, "--ckpt", str(path), "--data", "synthetic:100"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_full_disk_while_writing_the_torch_train_state_is_one_line(run_copy, monkeypatch, capsys):
    """torch.save writing the file itself turned the OSError into a RuntimeError traceback."""
    import experiment.atomic as atomic
    out = run_copy("torch")
    original = atomic._write_and_replace

    class Full:  # a disk that fills up part way through the file, as a real one does
        def __init__(self, f):
            self.f, self.room = f, 512

        def write(self, data):
            if len(data) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    def write_and_replace(d, path, write, binary):
        full = path.endswith("train_state.pt")
        return original(d, path, (lambda f: write(Full(f))) if full else write, binary)

    monkeypatch.setattr(atomic, "_write_and_replace", write_and_replace)
    with pytest.raises(SystemExit) as e:
        TRAIN["torch"]([*TINY_RUN, "--out", out, "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert "cannot write" in err and "train_state.pt" in err and "No space left on device" in err
