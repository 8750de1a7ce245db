"""Training trajectories: 200 Adam steps from one converted init on the same batches.

Run in float64. In float32 the two frameworks' trajectories separate after a few dozen steps even
though every single gradient agrees to ~1e-8: Adam divides each gradient by its own running RMS,
so a component that is ~0 and whose sign is decided by rounding moves by a full learning rate in
one framework and the other way in the other (measured on CPU: loss 2e-5 apart at step 10, 1e-2 at
step 50). float64 pushes that rounding below anything Adam's eps=1e-8 lets through, so what is left
is the algorithm: same model, same loss, same optimiser, same batches, same masks.
"""
import functools

import jax
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

from flax_impl.convert import torch_to_flax
from flax_impl.steps import make_optimizer
from parity_tests.helpers import dropout_outputs, leaves, nchw, on_device, twin_models
from parity_tests.tolerances import (
    CONTROL_STEPS,
    CONTROL_STEPS_ADAM_EPS,
    TRAJECTORY_LOSS_ATOL,
    TRAJECTORY_PARAM_ATOL,
    TRAJECTORY_STEPS,
)

STEPS, BATCH, SEED = TRAJECTORY_STEPS, 64, 2


def torch_forward_with_masks(tm, x, masks, keep, bug):
    """DropoutModel's forward with given masks (1 = kept) instead of torch's own RNG; `bug` (negative
    controls) drops the 1/keep scaling or moves each mask after fc1..fc3."""
    scale = 1.0 if bug.get("unscaled_dropout") else 1 / keep
    x = tm.pool(F.relu(tm.conv1(x)))
    x = tm.pool(F.relu(tm.conv2(x)))
    x = torch.flatten(x, 1)
    if bug.get("dropout_after_fc"):
        x = F.relu(tm.fc1(x)) * masks[0] * scale
        x = F.relu(tm.fc2(x)) * masks[1] * scale
        return tm.fc3(x) * masks[2] * scale
    x = F.relu(tm.fc1(x * masks[0] * scale))
    x = F.relu(tm.fc2(x * masks[1] * scale))
    return tm.fc3(x * masks[2] * scale)


TX = make_optimizer(1e-3)  # the product's Adam
opt_init = jax.jit(TX.init)  # one program for both models (same shapes), not one eager op per parameter


@functools.cache  # one program per model: every negative control runs the real model's
def flax_step_fn(fm, train):
    """One jit-compiled Adam step that also returns the dropout masks Flax drew."""

    def loss_fn(params, x, y, key):
        model = nnx.merge(fm.graph, params)
        if train:
            logits, outputs = dropout_outputs(model, x, 0.5, nnx.Rngs(dropout=key))
            # out = x/keep where kept, 0 where dropped; where x == 0 the mask is irrelevant
            # (the unit is a ReLU/pool output of 0, whose gradient is 0 in both frameworks).
            masks = [out != 0 for out in outputs]
        else:
            logits, masks = model(x), []
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), masks

    @jax.jit
    def step(params, opt_state, x, y, seed, i):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), i)  # inside: no eager op per step
        (loss, masks), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y, key)
        updates, opt_state = TX.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, masks

    return step


def run_side_by_side(name, x_all, y_all, steps=STEPS, bug=None):
    """Per-step |loss difference|, final max |param difference| and the last masks.

    A negative control's `bug` is put in PyTorch's side (unscaled_dropout, dropout_after_fc,
    adam_eps), or shuffles each batch's images against its labels on Flax's (shuffled_batch). The
    check compares the frameworks symmetrically, so a bug on either side is the same difference to
    catch; Flax then runs the real model's program, compiled once (a mutant's float64 step would be
    one more program each, seconds on a GPU)."""
    bug, seed = bug or {}, SEED
    tm, fm, params = twin_models(name, seed)
    tm = tm.double().train()
    params = jax.tree_util.tree_map(lambda a: a.astype(np.float64), params)  # on the host: no eager op
    opt_t = torch.optim.Adam(tm.parameters(), lr=1e-3, eps=bug.get("adam_eps", 1e-8))  # PyTorch's default eps
    step = flax_step_fn(fm, train=(name == "dropout"))
    opt_state = opt_init(params)
    loss_diffs = []
    for i in range(steps):
        idx = np.random.default_rng([seed, i]).choice(len(x_all), BATCH, replace=False)
        x, y = x_all[idx].astype(np.float64), y_all[idx]
        x_flax = x[np.random.default_rng(i).permutation(BATCH)] if bug.get("shuffled_batch") else x
        params, opt_state, loss_f, masks = step(params, opt_state, x_flax, y, seed, i)
        opt_t.zero_grad()
        if masks:
            tmasks = [on_device(torch.from_numpy(np.asarray(m, np.float64))) for m in masks]
            logits = torch_forward_with_masks(tm, nchw(x), tmasks, keep=0.5, bug=bug)
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
    except RuntimeError as e:
        if "must match the size of tensor" not in str(e):  # only PyTorch's shape mismatch counts
            raise
        print(f"  negative control cannot even run: {str(e).splitlines()[0][:100]}")
        return True
    print(f"  negative control: max loss diff {diffs.max():.2e}, final param diff {final:.2e}")
    return diffs.max() > TRAJECTORY_LOSS_ATOL or final > TRAJECTORY_PARAM_ATOL


@pytest.mark.parametrize("bug", [dict(unscaled_dropout=True), dict(dropout_after_fc=True)], ids=str)
def test_negative_control_dropout_bugs_are_caught(bug, real_batch):
    assert fails(lambda: run_side_by_side("dropout", *real_batch, CONTROL_STEPS, bug))


def test_negative_control_wrong_adam_epsilon_is_caught(real_batch):
    assert fails(lambda: run_side_by_side("baseline", *real_batch, CONTROL_STEPS_ADAM_EPS, dict(adam_eps=1e-4)))


def test_negative_control_shuffled_batch_is_caught(real_batch):
    """The Flax side sees each batch's images in another order than their labels."""
    assert fails(lambda: run_side_by_side("baseline", *real_batch, CONTROL_STEPS, dict(shuffled_batch=True)))
