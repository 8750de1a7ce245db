"""Training trajectories: 200 Adam steps from one converted init on the same batches.

Run in float64. In float32 the two frameworks' trajectories separate after a few dozen steps even
though every single gradient agrees to ~1e-8: Adam divides each gradient by its own running RMS,
so a component that is ~0 and whose sign is decided by rounding moves by a full learning rate in
one framework and the other way in the other (measured on CPU: loss 2e-5 apart at step 10, 1e-2 at
step 50). float64 pushes that rounding below anything Adam's eps=1e-8 lets through, so what is left
is the algorithm: same model, same loss, same optimiser, same batches, same masks.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from flax.errors import FlaxError

from flax_impl.convert import torch_to_flax
from flax_impl.steps import make_optimizer
from parity_tests.helpers import leaves, nchw, on_device, twin_models
from parity_tests.mutants import BrokenLeNet
from parity_tests.tolerances import (
    CONTROL_STEPS,
    CONTROL_STEPS_ADAM_EPS,
    TRAJECTORY_LOSS_ATOL,
    TRAJECTORY_PARAM_ATOL,
    TRAJECTORY_STEPS,
)

STEPS, BATCH = TRAJECTORY_STEPS, 64


def torch_forward_with_masks(tm, x, masks, keep):
    """DropoutModel's forward with given masks (1 = kept) instead of torch's own RNG."""
    x = tm.pool(F.relu(tm.conv1(x)))
    x = tm.pool(F.relu(tm.conv2(x)))
    x = torch.flatten(x, 1)
    x = F.relu(tm.fc1(x * masks[0] / keep))
    x = F.relu(tm.fc2(x * masks[1] / keep))
    return tm.fc3(x * masks[2] / keep)


def flax_optimizer(adam_eps=None):
    """The product's Adam, or (negative control) Adam with another eps."""
    return make_optimizer(1e-3) if adam_eps is None else optax.adam(1e-3, b1=0.9, b2=0.999, eps=adam_eps)


@functools.cache  # one program per (model, optimiser): the shuffled-batch control reuses BaseLine's
def flax_step_fn(fm, adam_eps, train):
    """One jit-compiled Adam step that also returns the dropout masks Flax drew."""
    tx = flax_optimizer(adam_eps)

    def loss_fn(params, x, y, key):
        masks = []

        def capture(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, nn.Dropout) and train:
                # out = x/keep where kept, 0 where dropped; where x == 0 the mask is irrelevant
                # (the unit is a ReLU/pool output of 0, whose gradient is 0 in both frameworks).
                masks.append(out != 0)
            return out

        with nn.intercept_methods(capture):
            logits = fm.apply({"params": params}, x, train=train, rngs={"dropout": key} if train else None)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), masks

    @jax.jit
    def step(params, opt_state, x, y, key):
        (loss, masks), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, masks

    return tx, step


def run_side_by_side(name, x_all, y_all, seed=2, flax_model=None, adam_eps=None, steps=STEPS,
                     shuffle_flax_batch=False):
    """Per-step |loss difference|, final max |param difference| and the last masks; a broken
    flax_model / Adam eps (negative controls) replaces the real one."""
    tm, fm, params = twin_models(name, seed)
    fm = flax_model or fm
    tm = tm.double().train()
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    opt_t = torch.optim.Adam(tm.parameters(), lr=1e-3)
    tx, step = flax_step_fn(fm, adam_eps, train=(name == "dropout"))
    opt_state = tx.init(params)
    run_key = jax.random.PRNGKey(seed)
    loss_diffs = []
    for i in range(steps):
        idx = np.random.default_rng([seed, i]).choice(len(x_all), BATCH, replace=False)
        x, y = x_all[idx].astype(np.float64), y_all[idx]
        x_flax = x[np.random.default_rng(i).permutation(BATCH)] if shuffle_flax_batch else x
        params, opt_state, loss_f, masks = step(params, opt_state, jnp.asarray(x_flax), jnp.asarray(y),
                                                jax.random.fold_in(run_key, i))
        opt_t.zero_grad()
        if masks:
            tmasks = [on_device(torch.from_numpy(np.asarray(m, np.float64))) for m in masks]
            logits = torch_forward_with_masks(tm, nchw(x), tmasks, keep=0.5)
        else:
            logits = tm(nchw(x))
        loss_t = F.cross_entropy(logits, on_device(torch.from_numpy(y)))
        loss_t.backward()
        opt_t.step()
        loss_diffs.append(abs(loss_t.item() - float(loss_f)))
    final = {k: np.abs(v - np.asarray(leaves(params)[k])).max()
             for k, v in leaves(torch_to_flax_f64(tm.state_dict())).items()}
    return np.array(loss_diffs), max(final.values()), masks


def torch_to_flax_f64(sd):
    return jax.tree_util.tree_map(np.asarray, {n: {k: v.astype(np.float64) for k, v in p.items()}
                                              for n, p in torch_to_flax(sd).items()})


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_adam_trajectory_dropout_off(real_batch):
    diffs, final, _ = run_side_by_side("baseline", *real_batch)
    print(f"BaseLine, {STEPS} Adam steps: max per-step loss diff {diffs.max():.2e}, "
          f"final max |param diff| {final:.2e}")
    assert diffs.max() <= TRAJECTORY_LOSS_ATOL
    assert final <= TRAJECTORY_PARAM_ATOL


def test_dropout_trajectory_with_injected_masks(real_batch):
    """Flax's masks replayed in PyTorch: proves placement (before fc1, fc2, fc3) and 1/(1-p) scaling."""
    diffs, final, masks = run_side_by_side("dropout", *real_batch)
    assert [m.shape for m in masks] == [(BATCH, 400), (BATCH, 120), (BATCH, 84)]
    print(f"Dropout with injected masks, {STEPS} steps: max per-step loss diff {diffs.max():.2e}, "
          f"final max |param diff| {final:.2e}")
    assert diffs.max() <= TRAJECTORY_LOSS_ATOL
    assert final <= TRAJECTORY_PARAM_ATOL


def fails(run):
    """True when a side-by-side run breaks its tolerance (or cannot even run: shapes differ)."""
    try:
        diffs, final, _ = run()
    except (ValueError, TypeError, RuntimeError, FlaxError) as e:
        print(f"  negative control raised {type(e).__name__}")
        return True
    print(f"  negative control: max loss diff {diffs.max():.2e}, final param diff {final:.2e}")
    return diffs.max() > TRAJECTORY_LOSS_ATOL or final > TRAJECTORY_PARAM_ATOL


@pytest.mark.parametrize("bug", [dict(unscaled_dropout=True), dict(dropout_after_fc=True)], ids=str)
def test_negative_control_dropout_bugs_are_caught(bug, real_batch):
    broken = BrokenLeNet(dropout_rate=0.5, **bug)
    assert fails(lambda: run_side_by_side("dropout", *real_batch, flax_model=broken, steps=CONTROL_STEPS))


def test_negative_control_wrong_adam_epsilon_is_caught(real_batch):
    assert fails(lambda: run_side_by_side("baseline", *real_batch, adam_eps=1e-4, steps=CONTROL_STEPS_ADAM_EPS))


def test_negative_control_shuffled_batch_is_caught(real_batch):
    """The Flax side sees each batch's images in another order than their labels."""
    assert fails(lambda: run_side_by_side("baseline", *real_batch, shuffle_flax_batch=True, steps=CONTROL_STEPS))
