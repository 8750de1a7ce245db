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
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx, serialization

from flax_impl import train as flax_train
from flax_impl.models import Dropout, Network
from flax_impl.steps import init_state, loss_and_logits, make_optimizer
from tests.conftest import history_without_timings, refused

HISTORY_ATOL = 1e-4   # the vmap-vs-one-by-one tolerance of tests/test_seeds.py
PARAM_ATOL = 5e-3     # a few Adam steps of lr 1e-3 (tests/test_sharding.py)
RUN = ["--data", "synthetic:1000", "--epochs", "2", "--batch-size", "48", "--no-progress"]


def key_stream():
    return nnx.Rngs(dropout=jax.random.PRNGKey(7))


@pytest.mark.parametrize("rate", [0.25, 0.5, 0.7])
def test_a_lanes_dropout_is_nnx_dropout_bit_for_bit(rate):
    """The rate as an input (an array) draws nnx.Dropout's mask at that rate from the same key, and scales
    alike (compared eagerly: inside a compiled program XLA may divide by a rate that is an input through
    its reciprocal, 1 ulp away, as lanes always have)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 400))
    want = nnx.Dropout(rate, deterministic=False)(x, rngs=key_stream())
    got = Dropout()(x, jnp.float32(rate), key_stream())
    np.testing.assert_array_equal(got, want)
    other = nnx.Dropout(rate, deterministic=False)(x, rngs=nnx.Rngs(dropout=jax.random.PRNGKey(8)))
    assert not np.array_equal(got, other)  # control: another key, another mask


def test_a_lane_of_rate_0_is_the_baseline_bit_for_bit():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 400))
    np.testing.assert_array_equal(Dropout()(x, jnp.float32(0.0), key_stream()), x)
    grad = jax.grad(lambda v: Dropout()(v, jnp.float32(0.0), key_stream()).sum())(x)
    np.testing.assert_array_equal(grad, np.ones_like(x))  # no mask in the backward pass either


def test_the_dropout_model_at_rate_0_is_the_baseline_model_bit_for_bit():
    """Loss and every gradient of a training step, each model compiled on its own; a rate of 0.01
    (control) changes them."""
    params = init_state(Network("baseline"), make_optimizer(1e-3), 0)["params"]
    x = jax.random.normal(jax.random.PRNGKey(1), (32, 32, 32, 3))
    y = jnp.arange(32) % 10

    def step(network, rate):
        loss = lambda p: loss_and_logits(network.graph, p, x, y, rate, jax.random.PRNGKey(2))[0]  # noqa: E731
        return jax.jit(jax.value_and_grad(loss))(params)

    want = step(Network("baseline"), None)
    got = step(Network("dropout"), jnp.float32(0.0))
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(a, b)
    dropped = step(Network("dropout"), jnp.float32(0.01))
    assert dropped[0] != want[0]


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


def rewrite_state(path, edit):
    raw = serialization.msgpack_restore(open(path, "rb").read())
    raw["state"] = edit(raw["state"], json.loads(raw["lanes"]))
    with open(path, "wb") as f:
        f.write(serialization.to_bytes(raw))


@pytest.mark.slow  # a training run and three resumed ones
def test_a_train_state_that_holds_the_lanes_rates_resumes(tmp_path, capsys):
    """Until the rate became an input of the program, lanes of several rates kept each lane's rate in
    the train state (state["rate"]): such a file resumes exactly as the same file without it. Controls:
    another step in the file changes the resumed epoch; a file without the run key is refused in one line."""
    base = str(tmp_path / "base")
    flax_train.main(["--data", "synthetic:300", "--dropout-rates", "0,0.25", "--epochs", "1", "--no-progress",
                     "--out", base])
    rates = lambda lanes: np.array([lane["dropout_rate"] for lane in lanes], np.float32)  # noqa: E731
    edits = {"as_now": lambda state, lanes: state,
             "with_rates": lambda state, lanes: {**state, "rate": rates(lanes)},
             "other_step": lambda state, lanes: {**state, "step": state["step"] + 1},
             "no_run_key": lambda state, lanes: {k: v for k, v in state.items() if k != "key"}}
    for name, edit in edits.items():
        shutil.copytree(base, tmp_path / name)
        rewrite_state(str(tmp_path / name / "train_state.msgpack"), edit)
    err = refused(flax_train.main, ["--resume", str(tmp_path / "no_run_key"), "--epochs", "2"],
                  str(tmp_path / "no_run_key"), capsys)
    assert "does not fit this run's lanes" in err, err
    epochs = {}
    for name in ("as_now", "with_rates", "other_step"):
        flax_train.main(["--resume", str(tmp_path / name), "--epochs", "2", "--no-progress"])
        epochs[name] = history_without_timings(str(tmp_path / name / "dropout_0.25" / "history.json"))[0]
    assert len(epochs["as_now"]) == 2 and epochs["with_rates"] == epochs["as_now"]
    assert epochs["other_step"][1] != epochs["as_now"][1]  # the masks of step n+1, not n
