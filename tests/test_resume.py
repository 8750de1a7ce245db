"""Kill, Ctrl-C, divergence: a run loses at most the epoch in progress, and a resumed run ends with
the same history.json and the same final state (params, optimiser, step, key or RNG) as an
uninterrupted one, bit for bit, in both frameworks.

Real processes, real signals: each run that is killed or stopped is a process of its own; the run a
user would start next (the resume, an uninterrupted reference) runs in the test's process, which
computes the same bits. KILL_TRIALS (default 1) random SIGKILLs per framework.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from experiment.frameworks import FRAMEWORKS
from tests.conftest import REPO, TRAIN, history_without_timings

pytestmark = [pytest.mark.slow,  # real processes killed at random points
              pytest.mark.usefixtures("torch_on_one_thread")]  # here as in the children (ENV)

PROGS = {name: fw.train for name, fw in FRAMEWORKS.items()}
EXT = {name: fw.ckpt_ext for name, fw in FRAMEWORKS.items()}
# 2 seeds in one run (the resumed state holds both), 19 batches an epoch incl. a partial one.
RUN = ["--data", "synthetic:1500", "--model", "dropout", "--seeds", "0,1", "--epochs", "8", "--no-progress"]
SEEDS = (0, 1)
TRIALS = int(os.environ.get("KILL_TRIALS", "1"))


# Epoch lines arrive as they are printed. PyTorch on one thread, in the children and in this process
# alike (a resumed run must compute the bits of an uninterrupted one, thread count included): these
# tiny models run several times faster without a thread pool on a busy machine.
ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


def command(fw, *args):
    return [sys.executable, "-m", PROGS[fw], *args]


def run_here(fw, *args):
    """A train command in this process (the next command a user types; no signal reaches it)."""
    TRAIN[fw](list(args))


def start(argv, **kw):
    return subprocess.Popen(argv, cwd=REPO, env=ENV, text=True, **kw)


def wait_for_training(p):
    """Read the child's output up to its first epoch line; return when that arrived."""
    for line in p.stdout:
        if "epoch 1/" in line:
            break
    return time.perf_counter()


def final_state(fw, out):
    """Every array of the saved train state (all seeds), by name."""
    path = os.path.join(out, "dropout", "train_state" + EXT[fw])
    if fw == "flax":
        from flax import serialization
        raw = serialization.msgpack_restore(open(path, "rb").read())
        return dict(_flat(raw["state"])), raw["epoch"]
    import torch
    raw = torch.load(path, weights_only=True)
    arrays = {}
    for i, lane in enumerate(raw["states"]):
        arrays.update({f"{i}/{k}": np.asarray(v) for k, v in _flat({"model": lane["model"], "rng": lane["rng"],
                                                                     "opt": lane["optimizer"]["state"]})})
    return arrays, raw["epoch"]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, f"{prefix}/{k}")
    else:
        yield prefix, np.asarray(tree)


def assert_same_run(fw, out, reference, folders=tuple(os.path.join("dropout", f"seed_{s}") for s in SEEDS)):
    for folder in folders:
        rel = os.path.join(folder, "history.json")
        rows, h = history_without_timings(os.path.join(out, rel))
        ref_rows, ref = history_without_timings(os.path.join(reference, rel))
        assert rows == ref_rows
        assert (h["best_epoch"], h["best_val_loss"]) == (ref["best_epoch"], ref["best_val_loss"])
    got, epoch = final_state(fw, out)
    want, ref_epoch = final_state(fw, reference)
    assert epoch == ref_epoch and got.keys() == want.keys()
    for k in want:
        assert np.array_equal(got[k], want[k]), k  # bitwise


@pytest.fixture(scope="module", params=["flax", "torch"])
def reference(request, tmp_path_factory):
    """An uninterrupted run, and the seconds from its first epoch line to its exit: the window
    the kills are drawn from."""
    fw = request.param
    out = str(tmp_path_factory.mktemp(f"ref-{fw}"))
    p = start(command(fw, *RUN, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    t0 = wait_for_training(p)
    p.communicate(timeout=600)
    assert p.returncode == 0
    return fw, out, time.perf_counter() - t0


def resume_until_done(fw, out):
    """What a user does after a kill: --resume, or the original command if nothing was saved yet."""
    if os.path.exists(os.path.join(out, "run.json")):
        run_here(fw, "--resume", out)
    else:
        run_here(fw, *RUN, "--out", out)


def test_sigkill_at_random_points_then_resume(reference, tmp_path):
    fw, ref_out, train_seconds = reference
    seed = random.randrange(2**31)
    rng = random.Random(seed)
    outcomes = []
    for trial in range(TRIALS):
        out = str(tmp_path / f"trial{trial}")
        p = start(command(fw, *RUN, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for_training(p)  # then kill anywhere in the rest of the run, writes included
        time.sleep(rng.uniform(0, train_seconds))
        p.send_signal(signal.SIGKILL)
        p.wait()
        saved = final_state(fw, out)[1] if os.path.exists(os.path.join(out, "dropout", "train_state" + EXT[fw])) \
            else 0
        outcomes.append(f"killed={p.returncode == -signal.SIGKILL} saved_epoch={saved}")
        resume_until_done(fw, out)
        assert_same_run(fw, out, ref_out)
    print(f"{fw}: {TRIALS} kill/resume trials (random seed {seed}): {'; '.join(outcomes)}")


# Run in a child: every train-state write after the first writes half its bytes, then hangs,
# so the parent can kill the process inside the write.
SLOW_WRITER = """
import io, os, sys, time
import experiment.atomic as atomic
import {module}.checkpoint as ckpt
from {module}.train import main

real = atomic.atomic_write
def half_then_hang(path, write, binary=True):
    if "train_state" not in path or not os.path.exists(path):
        return real(path, write, binary)
    def slow(f):
        buf = io.BytesIO() if binary else io.StringIO()
        write(buf)
        data = buf.getvalue()
        f.write(data[: len(data) // 2]); f.flush()
        open(sys.argv[1], "w").close()
        time.sleep(600)
    return real(path, slow, binary)
ckpt.atomic_write = half_then_hang
# Each epoch's log line waits for its files; this says when the training loop has an epoch's results.
import experiment.records as records
recorded = records.TrainerRecords.record
def say(self, trainer, snapshot, epoch, *rest):
    print(f"trained epoch {{epoch}}", flush=True)
    return recorded(self, trainer, snapshot, epoch, *rest)
records.TrainerRecords.record = say
main(sys.argv[2:])
"""


def start_slow_writer(module, marker, out, stderr):
    """The SLOW_WRITER child on RUN, and the list its stdout lines are collected into as they come."""
    p = start([sys.executable, "-c", SLOW_WRITER.format(module=module), marker, *RUN, "--out", out],
              stdout=subprocess.PIPE, stderr=stderr)
    lines = []
    threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True).start()
    return p, lines


def wait_until(p, lines, ready, seconds=300):
    """Poll ready() while the child runs; fail with its output if it ends or time runs out first."""
    deadline = time.time() + seconds
    while not ready():
        assert p.poll() is None and time.time() < deadline, "".join(lines)[-2000:]
        time.sleep(0.05)


def test_kill_inside_a_background_write_keeps_the_previous_one(reference, tmp_path):
    """Epoch 2's train state hangs half-written on the writer thread; training goes on (epoch 3 is
    trained: the write is in the background, though epoch 3's log line waits for its files); then the
    process is killed."""
    fw, ref_out, _ = reference
    out, marker = str(tmp_path / "run"), str(tmp_path / "writing")
    module = PROGS[fw].split(".")[0]
    p, lines = start_slow_writer(module, marker, out, stderr=subprocess.STDOUT)
    wait_until(p, lines, lambda: os.path.exists(marker) and any("trained epoch 3" in line for line in lines))
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not any("epoch 2/" in line for line in lines)  # not on disk, so not logged
    folder = os.path.join(out, "dropout")
    half_written = [f for f in os.listdir(folder) if f.startswith(".tmp-")]
    assert half_written, "the kill did not land inside the write"
    assert not any("epoch 3/" in line for line in lines)  # the log never showed an epoch that was not saved
    assert final_state(fw, out)[1] == 1  # epoch 2's write was cut: epoch 1's state is intact
    resume_until_done(fw, out)
    assert not [f for f in os.listdir(folder) if f.startswith(".tmp-")]  # the resume cleaned up
    assert_same_run(fw, out, ref_out)


# What `docker stop`, Kubernetes and Slurm send; what a closed terminal sends (the handling is shared
# code). Ctrl-C is the long-epoch test's signal below, with the same message and resume checked.
STOPS = {"flax": signal.SIGTERM, "torch": signal.SIGHUP}


def test_a_stop_signal_saves_and_says_how_to_resume(reference, tmp_path):
    fw, ref_out, _ = reference
    sig = STOPS[fw]
    out = str(tmp_path / "run")
    p = start(command(fw, *RUN, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_training(p)
    p.send_signal(sig)
    rest, err = p.communicate(timeout=300)
    assert p.returncode == 128 + sig, (p.returncode, err[-1000:])  # 130, 143, 129: the shell's codes
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert last.startswith(f"{PROGS[fw]}: stopped: ") and last.endswith(f"continue with: python -m {PROGS[fw]} "
                                                                        f"--resume {out}"), last
    saved = final_state(fw, out)[1]
    assert f"epoch {saved} is saved" in last and 1 <= saved < 8
    resume_until_done(fw, out)
    assert_same_run(fw, out, ref_out)


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(fw, tmp_path, capsys):
    # Adam moves every weight by ~lr in its first step: at lr 1e8 the next forward pass overflows
    # float32. One batch per epoch (80 training images, batch 80) puts that step in epoch 2.
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        run_here(fw, "--data", "synthetic:100", "--batch-size", "80", "--model", "baseline", "--epochs", "5",
                 "--lr", "1e8", "--no-progress", "--out", out)
    stderr = capsys.readouterr().err
    assert e.value.code == 3, stderr[-2000:]
    err = stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in stderr
    msg = err[0]
    epoch, step = (int(msg.split(f"{w} ")[1].split(",")[0].split(" ")[0]) for w in ("epoch", "step"))
    assert msg.startswith(f"{PROGS[fw]}: error: loss became ") and (epoch, step) == (2, 1), msg
    assert "last good checkpoint (epoch 1)" in msg
    h = json.load(open(os.path.join(out, "baseline", "history.json")))
    assert len(h["epochs"]) == epoch - 1 and np.isfinite(h["epochs"][-1]["train_loss"])
    if fw == "flax":
        from flax import serialization
        last = serialization.msgpack_restore(open(os.path.join(out, "baseline", "last.msgpack"), "rb").read())
        assert json.loads(last["meta"])["epoch"] == epoch - 1
        assert all(np.isfinite(v).all() for _, v in _flat(last["params"]))
    else:
        import torch
        assert json.load(open(os.path.join(out, "baseline", "last.json")))["epoch"] == epoch - 1
        weights = torch.load(os.path.join(out, "baseline", "last.pt"), weights_only=True)
        assert all(np.isfinite(v.numpy()).all() for v in weights.values())



# An epoch long enough that a stop which waits for it shows (seconds to tens of seconds on 2 cores;
# one scan of 4,000 steps for Flax, the tutorial engine's 38 batches for PyTorch).
LONG = {"flax": ["--data", "synthetic:20000", "--batch-size", "4"], "torch": ["--data", "synthetic:3000"]}
ANSWER_S, EXIT_S = 5, 10  # generous on a loaded machine; a stop that waited for the epoch took its length


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_stop_signal_is_answered_at_once_and_drops_the_epoch_in_progress(fw, tmp_path):
    """Ctrl-C while epoch 2 trains: acknowledged and exited in seconds, not at the epoch's end (Flax
    waits inside one C call for its epoch, PyTorch between two batches); epoch 1 is saved, and
    resuming redoes epoch 2 from its start, exactly as an uninterrupted run."""
    args = [*LONG[fw], "--model", "dropout", "--no-progress"]
    ref, out = str(tmp_path / "ref"), str(tmp_path / "run")
    run_here(fw, *args, "--epochs", "2", "--out", ref)
    p = start(command(fw, *args, "--epochs", "3", "--out", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_training(p)  # epoch 1's line: its files are on disk and epoch 2 trains
    answered = []
    reader = threading.Thread(target=lambda: answered.extend(time.perf_counter() for line in p.stdout
                                                             if line.startswith("SIGINT: ")), daemon=True)
    reader.start()
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    p.wait(timeout=300)
    exited = time.perf_counter() - t0
    err = p.stderr.read()
    reader.join(10)
    assert p.returncode == 130, err[-1000:]
    assert answered, "no acknowledgement line"
    answer = answered[0] - t0
    print(f"{fw}: signal -> acknowledgement {answer:.3f} s, -> exit {exited:.3f} s")
    last = err.strip().splitlines()[-1]
    assert last == f"{PROGS[fw]}: stopped: during epoch 2; epoch 1 is saved; continue with: python -m {PROGS[fw]} " \
                   f"--resume {out}", last
    assert answer < ANSWER_S and exited < EXIT_S, (answer, exited)
    assert not os.path.exists(os.path.join(out, ".running"))
    run_here(fw, "--resume", out, "--epochs", "2")
    assert_same_run(fw, out, ref, folders=["dropout"])


def test_a_second_signal_stops_at_once_with_the_last_committed_epoch(reference, tmp_path):
    """The first signal's stop waits for the queued writes, and epoch 2's train state write hangs:
    the second signal exits at once; epoch 1, the last committed, is on disk and resumes exactly."""
    fw, ref_out, _ = reference
    out, marker = str(tmp_path / "run"), str(tmp_path / "writing")
    module = PROGS[fw].split(".")[0]
    p, lines = start_slow_writer(module, marker, out, stderr=subprocess.PIPE)
    wait_until(p, lines, lambda: os.path.exists(marker))
    p.send_signal(signal.SIGTERM)
    wait_until(p, lines, lambda: any(line.startswith("SIGTERM: ") for line in lines))
    time.sleep(1)
    assert p.poll() is None  # waiting for the hung write
    t0 = time.perf_counter()
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    exited = time.perf_counter() - t0
    err = p.stderr.read()
    assert p.returncode == 128 + signal.SIGTERM and exited < EXIT_S, (p.returncode, exited, err[-1000:])
    last = err.strip().splitlines()[-1]
    assert "epoch 1 is saved; continue with: " in last and last.startswith(f"{PROGS[fw]}: stopped: during epoch "), last
    assert final_state(fw, out)[1] == 1 and not os.path.exists(os.path.join(out, ".running"))
    resume_until_done(fw, out)
    assert_same_run(fw, out, ref_out)


# Run in a child: loading the data writes a marker, then waits inside one long C call.
STUCK_LOADING = """
import sys, time
import experiment.entry as entry
from {module}.train import main

def stuck(config):
    open(sys.argv[1], "w").close()
    time.sleep(600)
entry.load_splits = stuck
main(sys.argv[2:])
"""


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_stop_before_training_exits_at_once_and_leaves_nothing(fw, tmp_path):
    out, marker = tmp_path / "new" / "run", str(tmp_path / "loading")
    p = start([sys.executable, "-c", STUCK_LOADING.format(module=PROGS[fw].split(".")[0]), marker, *RUN,
               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not os.path.exists(marker):
        assert p.poll() is None and time.time() < deadline, p.stderr.read()[-2000:]
        time.sleep(0.05)
    assert os.path.isdir(out)  # locked, its lanes' folders made
    t0 = time.perf_counter()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM and time.perf_counter() - t0 < EXIT_S
    err = p.stderr.read().strip().splitlines()
    assert err[-1] == f"{PROGS[fw]}: stopped: interrupted before training began; nothing was written", err
    assert not os.path.exists(tmp_path / "new")
