"""Scale-out on one machine, with XLA's fake host devices (--xla_force_host_platform_device_count=4):
seeds sharded over 4 devices, and one model's batch split over 4 devices, each against the same
training on one device."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # subprocesses with fake devices

# Trains dropout for 2 epochs, saves per-epoch losses and final params, prints the layout.
CHILD = """
import json, sys
import jax, numpy as np
from experiment.split import EpochBatches
from experiment.cli import train_parser
from experiment.config import RunConfig
from experiment.data import load_cifar10
from experiment.lanes import plan_lanes
from experiment.split import epoch_order, make_splits
from flax_impl.device import put
from flax_impl.options import FlaxOptions
from flax_impl.train import BACKEND
from flax_impl.trainer import FlaxTrainer

out, seeds, extra = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
p = train_parser(BACKEND.framework, BACKEND.options.add_flags)
args = p.parse_args(["--data", "synthetic:700", "--model", "dropout", "--seeds", ",".join(map(str, seeds)), *extra])
config = RunConfig.from_args("flax", args, FlaxOptions)
splits = make_splits(load_cifar10(config.data), config.val_fraction, config.split_seed, config.subset)
tr = FlaxTrainer(config, plan_lanes(config), splits)
orders = lambda epoch: np.stack([epoch_order(len(splits.train_x), s, epoch) for s in seeds]).astype(np.int32)
full = orders(1)[:, : 8 * config.batch_size].reshape(len(seeds), 8, config.batch_size)
p = tr.program
hlo = p.epoch.lower(tr.state, tr.rates, tr.data.train_x, tr.data.train_y, put(full, p.batch_sh)).compile().as_text()
losses = [tr.train_epoch(e, EpochBatches(orders(e), config.batch_size))["train_loss"] for e in (1, 2)]
val = tr.validate()["val_loss"]
leaf = tr.state["params"]["fc1"]["kernel"]
flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
        for path, v in jax.tree_util.tree_flatten_with_path(tr.state["params"])[0]}
np.savez(out, losses=np.array(losses), val=val, **flat)
print(json.dumps({"devices": len(jax.devices()), "mesh": list(tr.mesh.devices.shape),
                  "state_devices": len(leaf.sharding.device_set),
                  "shard_shape": list(leaf.addressable_shards[0].data.shape),
                  "all_reduce": "all-reduce" in hlo, "device": tr.device}))
"""


def train(tmp_path, name, devices, seeds, *extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    out = str(tmp_path / f"{name}.npz")
    r = subprocess.run([sys.executable, "-c", CHILD, out, json.dumps(seeds), *extra], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1]), dict(np.load(out))


def max_diff(a, b):
    assert a.keys() == b.keys()
    return {k: float(np.max(np.abs(a[k] - b[k]))) for k in a}


def assert_same_training(diffs):
    """Equal up to float32 rounding. A device's program differs from the one-device program (other
    batch shapes, so other kernels and summation orders), so sums round differently; and where a
    gradient component is ~0 its sign is decided by that rounding, and Adam moves such a weight by
    a whole learning rate (1e-3) one way or the other. So: losses to 1e-5 (a wrong seed, key or
    batch on a device is ~1e-2 off in the first epoch), parameters to a few learning rates."""
    losses_ok = diffs["losses"] <= 1e-5 and diffs["val"] <= 5e-4
    params_ok = max(v for k, v in diffs.items() if "/" in k) <= 5e-3
    assert losses_ok and params_ok, diffs


def test_seeds_sharded_over_four_devices_equal_one_device(tmp_path):
    seeds = [0, 1, 2, 3]
    info4, four = train(tmp_path, "four", 4, seeds)
    info1, one = train(tmp_path, "one", 1, seeds)
    # one seed per device: each holds a [1, 400, 120] slice of fc1's [4, 400, 120]
    assert info4["mesh"] == [4, 1] and info4["state_devices"] == 4 and info4["shard_shape"] == [1, 400, 120]
    assert info1["state_devices"] == 1 and info4["device"].endswith("x4")
    diffs = max_diff(four, one)
    print("seeds over 4 devices vs 1, max |diff|:", diffs)
    assert_same_training(diffs)


def test_seed_count_not_divisible_uses_fewer_devices(tmp_path):
    info, _ = train(tmp_path, "three", 4, [0, 1, 2], "--epochs", "1")
    assert info["mesh"] == [3, 1] and info["state_devices"] == 3


@pytest.mark.parametrize("batch", [64])
def test_data_parallel_equals_one_device(tmp_path, batch):
    info4, four = train(tmp_path, "dp4", 4, [0], "--data-parallel", "--batch-size", str(batch))
    info1, one = train(tmp_path, "dp1", 1, [0], "--data-parallel", "--batch-size", str(batch))
    assert info4["mesh"] == [1, 4] and info4["all_reduce"] and not info1["all_reduce"]
    assert info4["state_devices"] == 4 and info4["shard_shape"] == [1, 400, 120]  # params replicated
    diffs = max_diff(four, one)
    print("batch over 4 devices vs 1, max |diff|:", diffs)
    assert_same_training(diffs)


def test_data_parallel_refuses_a_batch_that_does_not_split(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    r = subprocess.run([sys.executable, "-m", "flax_impl.train", "--data", "synthetic:300", "--data-parallel",
                        "--batch-size", "30", "--out", str(tmp_path / "o")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip() == "flax_impl.train: error: --data-parallel: --batch-size 30 does not split over 4 devices"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path):
    """jax.distributed on one machine: 2 processes x 2 CPU devices each = one 4-device mesh over 4
    seeds, started with the README's flags; the histories equal a 1-process, 4-device run's."""
    run = ["--data", "synthetic:700", "--model", "dropout", "--seeds", "0,1,2,3", "--epochs", "2", "--no-progress"]

    def env(devices):
        return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")

    one = str(tmp_path / "one")
    r = subprocess.run([sys.executable, "-m", "flax_impl.train", *run, "--out", one], cwd=REPO, env=env(4),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    two, port = str(tmp_path / "two"), free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "flax_impl.train", *run, "--out", two,
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=REPO, env=env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "x4" in json.load(open(os.path.join(two, "dropout", "seed_0", "history.json")))["device"]
    def rows(folder, s):
        h = json.load(open(os.path.join(folder, "dropout", f"seed_{s}", "history.json")))
        return {k: np.array([e[k] for e in h["epochs"]]) for k in ("train_loss", "val_loss", "train_acc", "val_acc")}

    for s in range(4):
        got, want = rows(two, s), rows(one, s)
        diffs = {k: float(np.max(np.abs(got[k] - want[k]))) for k in got}
        print(f"seed {s}, 2 processes vs 1, max |diff|:", diffs)
        assert diffs["train_loss"] <= 1e-5 and diffs["val_loss"] <= 5e-4, diffs  # see assert_same_training
        assert diffs["train_acc"] <= 2 / 560 and diffs["val_acc"] <= 2 / 140, diffs  # 2 images at most
        copy = rows(os.path.join(two, "process_1"), s)  # process 1's files hold the same gathered numbers
        assert all(np.array_equal(copy[k], got[k]) for k in got)
