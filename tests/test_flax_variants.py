"""The Flax speed settings the speed runner times (--scan-unroll, --donate, --micro-batch; XLA's
command buffers) compute what the defaults compute, on the CPU: the device run can then judge them
by speed alone."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.runners.speed import COMMAND_BUFFERS, variant_spec
from experiment.lanes import plan_lanes
from experiment.sources.synthetic import make_synthetic
from experiment.split import EpochBatches, epoch_order, make_splits
from flax_impl import train
from flax_impl.trainer import FlaxTrainer
from tests.conftest import REPO

SPLITS = make_splits(make_synthetic(300, 20, seed=5))  # 240 training images
EPOCHS = 2
# Chunked and whole-batch gradients are the same sum in another order, and XLA fuses the steps of an
# unrolled scan together (measured on CPU: parameters 9e-8 apart after 16 steps): float32 rounding,
# grown over a few dozen Adam steps (the lanes-vs-separate tolerance of tests/test_lanes.py, for the
# same reason).
REORDERED_ATOL = 1e-4


def run(batch_size=32, **settings):
    """Metrics of every epoch and each epoch's snapshot params: 2 lanes (BaseLine and Dropout, one
    program), read only after the next epoch was queued, as the training loop reads them."""
    config = train.default(model="both", batch_size=batch_size, device="cpu", no_progress=True, **settings)
    trainer = FlaxTrainer(config, plan_lanes(config), SPLITS)
    epochs = [trainer.start_epoch(e, EpochBatches(np.stack([epoch_order(240, 0, e)] * 2), batch_size))
              for e in range(1, EPOCHS + 1)]
    return [(e.metrics(), e.snapshot.host()["params"]) for e in epochs]


def max_diff(a, b):
    diffs = [np.abs(np.asarray(a[k]) - np.asarray(b[k])).max() for k in a] if isinstance(a, dict) else []
    return max([0.0, *diffs])


def same(a, b, atol=0.0):
    """Whether two runs agree within atol (0: bit for bit), metrics and parameters of every epoch."""
    for (ma, pa), (mb, pb) in zip(a, b):
        if max_diff(ma, mb) > atol:
            return False
        flat = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, y: np.abs(x - y).max(), pa, pb))
        if max(flat) > atol:
            return False
    return True


@pytest.fixture(scope="module")
def default_run():
    return run()


@pytest.mark.slow  # three Flax runs of other programs (the default, donated, a control)
def test_a_donated_program_computes_the_default_bit_for_bit(default_run):
    assert same(run(donate=True), default_run)
    assert not same(run(lr=1e-3 * (1 + 1e-6)), default_run)  # control: the check sees a tiny change


@pytest.mark.slow  # two Flax runs of other programs
def test_an_unrolled_scan_computes_the_default_up_to_rounding(default_run):
    assert same(run(scan_unroll=4), default_run, atol=REORDERED_ATOL)
    assert not same(run(lr=2e-3), default_run, atol=REORDERED_ATOL)  # control: the check sees another lr


@pytest.mark.slow  # a donated run beside the default one
def test_donated_snapshots_stay_readable_without_the_device_copy_they_would_not(default_run, monkeypatch):
    """With --donate each epoch's first step consumes the state; the snapshot of the epoch before is
    a device copy, so it is still there when the loop reads it. The control: without the copy, the
    snapshot's buffers are gone by then."""
    monkeypatch.setattr(jnp, "copy", lambda a: a)
    with pytest.raises(RuntimeError, match="deleted"):
        run(donate=True)


def baseline_lane(runs):
    """Lane 0 (the BaseLine) of every epoch of a run."""
    return [({k: v[:1] for k, v in m.items()}, jax.tree_util.tree_map(lambda a: a[:1], p)) for m, p in runs]


@pytest.mark.slow  # three Flax runs of other programs
def test_whole_batches_compute_the_chunked_gradient():
    """The BaseLine lane: the same gradient summed in another order. A Dropout lane draws its masks
    once per batch instead of once per 64-image chunk (a key per chunk): the same distribution, other
    masks, so its numbers are not compared."""
    chunked, whole = (baseline_lane(run(batch_size=128, micro_batch=m)) for m in (64, 0))
    assert same(whole, chunked, atol=REORDERED_ATOL)
    assert not same(whole, chunked, atol=0.0)  # the chunks ran: another order, other roundings
    assert not same(baseline_lane(run(batch_size=128, micro_batch=0, lr=2e-3)), chunked, atol=REORDERED_ATOL)


def test_variant_names_give_the_settings_and_each_row_records_them():
    assert variant_spec("flax-scan-matmul-vmap16-unroll4-donate-nochunk-tf32") == ("flax", {
        "fuse": "scan", "impl": "matmul", "scan_unroll": 4, "donate": True, "micro_batch": 0, "seeds": 16,
        "precision": "tf32"})
    assert variant_spec("torch-cudagraph-vmap16")[1]["engine"] == "vmap-cudagraph"
    with pytest.raises(ValueError, match="unknown variant"):
        variant_spec("torch-fast-unroll4")  # the options are Flax's


@pytest.mark.slow  # a process of its own: XLA reads its flags once, when it starts
def test_command_buffer_flags_are_known_to_this_xla_and_recorded():
    r = subprocess.run([sys.executable, "-m", "benchmarks.runners.speed", "--out", "unused", "--one",
                        "flax-scan-matmul-unroll2-cmdbuf", "baseline", "32", "--images", "64", "--repeats", "1"],
                       cwd=REPO, capture_output=True, text=True, env={**dict(__import__("os").environ),
                                                                    "XLA_FLAGS": COMMAND_BUFFERS})
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(r.stdout.strip().splitlines()[-1])
    assert row["xla_flags"] == COMMAND_BUFFERS and row["settings"]["scan_unroll"] == 2
