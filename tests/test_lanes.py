"""Lanes: BaseLine and Dropout at several rates, over several seeds, trained as one compiled Flax
program, equal each (network, rate, seed) trained on its own.

Not bit for bit: the lane program is vmapped over 6 lanes, a separate run over 2, and XLA's batched
matmuls sum in another order than narrower ones (the same reason --seeds runs are compared to
single-seed runs within 1e-4, tests/test_seeds.py). Parameters: a gradient component near 0 whose
sign that rounding decides makes Adam move it by a whole learning rate (1e-3) one way or the other,
so they are compared within a few learning rates, as in tests/test_sharding.py. The masks are the
same bits in both (the dropout layer of a lane is checked bitwise below), so a lane with another
rate or seed is far outside both tolerances (the negative controls)."""
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from flax_impl import train as flax_train
from flax_impl.models import LaneDropout

HISTORY_ATOL = 1e-4   # the vmap-vs-one-by-one tolerance of tests/test_seeds.py
PARAM_ATOL = 5e-3     # a few Adam steps of lr 1e-3 (tests/test_sharding.py)
RUN = ["--data", "synthetic:1000", "--epochs", "2", "--batch-size", "48", "--no-progress"]


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.7])
def test_a_lanes_dropout_is_flax_dropout_bit_for_bit(rate):
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 400))
    rngs = {"dropout": jax.random.PRNGKey(7)}
    want = nn.Dropout(rate, deterministic=False).apply({}, x, rngs=rngs)
    got = LaneDropout().apply({}, x, jnp.float32(rate), False, rngs=rngs)
    np.testing.assert_array_equal(got, want)


def test_a_lane_of_rate_0_is_the_baseline_bit_for_bit():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 400))
    rngs = {"dropout": jax.random.PRNGKey(7)}
    np.testing.assert_array_equal(LaneDropout().apply({}, x, jnp.float32(0.0), False, rngs=rngs), x)
    grad = jax.grad(lambda v: LaneDropout().apply({}, v, jnp.float32(0.0), False, rngs=rngs).sum())(x)
    np.testing.assert_array_equal(grad, np.ones_like(x))  # no mask in the backward pass either


def rows(out, group, seed):
    h = json.load(open(os.path.join(out, group, f"seed_{seed}", "history.json")))
    return np.array([[e[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")] for e in h["epochs"]])


def lane_params(state_file):
    """{(group, seed): params} from a train state."""
    raw = serialization.msgpack_restore(open(state_file, "rb").read())
    lanes = json.loads(raw["lanes"])
    params = raw["state"]["params"]
    return {(x["group"], x["seed"]): jax.tree_util.tree_map(lambda a, i=i: a[i], params) for i, x in enumerate(lanes)}


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.slow  # four training runs
def test_lanes_of_models_rates_and_seeds_equal_separate_runs(tmp_path):
    seeds = (1, 2)
    lanes = str(tmp_path / "lanes")
    flax_train.main([*RUN, "--dropout-rates", "0,0.25,0.5", "--seeds", "1,2", "--out", lanes])
    together = lane_params(os.path.join(lanes, "train_state.msgpack"))
    assert sorted(together) == [(g, s) for g in ("baseline", "dropout", "dropout_0.25") for s in seeds]
    alone = {}
    separate = {"baseline": ["--model", "baseline"], "dropout_0.25": ["--model", "dropout", "--dropout-rate", "0.25"],
                "dropout": ["--model", "dropout"]}
    for group, flags in separate.items():
        out = str(tmp_path / group)
        flax_train.main([*RUN, *flags, "--seeds", "1,2", "--out", out])
        folder = group.split("_")[0]
        state = lane_params(os.path.join(out, folder, "train_state.msgpack"))
        for s in seeds:
            alone[(group, s)] = (rows(out, folder, s), state[(folder, s)])
    for (group, s), (want_rows, want_params) in alone.items():
        got_rows = rows(lanes, group, s)
        history_diff, param_diff = np.abs(got_rows - want_rows).max(), max_diff(together[(group, s)], want_params)
        print(f"{group} seed {s}: history {history_diff:.1e}, params {param_diff:.1e}")
        assert history_diff <= HISTORY_ATOL and param_diff <= PARAM_ATOL
    # Negative controls: another rate, another seed.
    assert np.abs(rows(lanes, "dropout_0.25", 1) - alone[("dropout", 1)][0]).max() > 100 * HISTORY_ATOL
    assert max_diff(together[("dropout", 1)], alone[("dropout", 2)][1]) > 10 * PARAM_ATOL


def test_rates_that_would_share_a_folder_are_refused():
    """0.1 and 0.1000001 both print as 0.1: one lane's files would overwrite the other's."""
    from experiment.errors import UserError
    from experiment.lanes import plan_lanes
    with pytest.raises(UserError, match=r"0\.1 and 0\.1000001 would both write dropout_0\.1/"):
        plan_lanes(flax_train.default(dropout_rates=[0, 0.1, 0.1000001]))
    assert len(plan_lanes(flax_train.default(dropout_rates=[0, 0.1, 0.2]))) == 3
