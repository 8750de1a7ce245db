"""Dropout in each framework: keep rate, 1/(1-p) scaling, eval identity, keys, independence."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

from flax_impl.models import Dropout, Network
from parity_tests.helpers import dropout_outputs, twin_models
from parity_tests.tolerances import KEEP_FRACTION_ATOL, MASK_CORRELATION_MAX

N = 1_000_000  # units per draw


@functools.partial(jax.jit, static_argnames=("train", "scaled"))  # one program per shape and flags, not one per op
def flax_dropout(x, key, train=True, scaled=True):
    """The models' dropout layer at rate 0.5, in training (its key) or evaluation (none)."""
    out = Dropout()(x, 0.5, nnx.Rngs(dropout=key) if train else None)
    return out if scaled else out * 0.5  # negative control: dropout without 1/(1-p)


ONES = np.ones(N, np.float32)


def check_keep_and_scale(out, x_value=1.0):
    out = np.asarray(out).ravel()
    kept = out != 0
    assert abs(kept.mean() - 0.5) <= KEEP_FRACTION_ATOL, kept.mean()
    assert np.all(out[kept] == 2 * x_value), np.unique(out[kept])[:5]


def test_flax_keep_fraction_and_scaling():
    check_keep_and_scale(flax_dropout(ONES, jax.random.PRNGKey(0)))


def test_torch_keep_fraction_and_scaling():
    torch.manual_seed(0)
    check_keep_and_scale(F.dropout(torch.ones(N), 0.5, training=True).numpy())


def test_negative_control_unscaled_dropout_is_caught():
    with pytest.raises(AssertionError):
        check_keep_and_scale(flax_dropout(ONES, jax.random.PRNGKey(0), scaled=False))


def test_eval_is_identity_in_both():
    x = np.random.default_rng(0).normal(size=(1000,)).astype(np.float32)
    np.testing.assert_array_equal(flax_dropout(x, jax.random.PRNGKey(0), train=False), x)
    np.testing.assert_array_equal(F.dropout(torch.from_numpy(x), 0.5, training=False).numpy(), x)


def test_keys_decide_masks():
    x, k = ONES, jax.random.PRNGKey(5)  # the keep-fraction test's shape: its program
    same = [np.asarray(flax_dropout(x, k)) for _ in range(2)]
    np.testing.assert_array_equal(*same)
    next_step = np.asarray(flax_dropout(x, jax.random.fold_in(k, 1)))
    other_seed = np.asarray(flax_dropout(x, jax.random.PRNGKey(6)))
    assert (next_step != same[0]).mean() > 0.4 and (other_seed != same[0]).mean() > 0.4


@functools.partial(jax.jit, static_argnums=(0, 3))  # one program, not one compile per eager op
def layer_masks(graph, params, key, batch=4096):
    x = jnp.ones((batch, 32, 32, 3))  # all-positive activations: every unit's mask is visible
    model = nnx.merge(graph, jax.tree_util.tree_map(jnp.abs, params))
    _, outputs = dropout_outputs(model, x, 0.5, nnx.Rngs(dropout=key))
    return [out != 0 for out in outputs]


def max_mask_correlation(masks):
    cols = [m[:, :84].ravel().astype(np.float64) for m in masks]
    return max(abs(np.corrcoef(cols[i], cols[j])[0, 1]) for i in range(3) for j in range(i + 1, 3))


def test_three_layers_masks_are_independent():
    # Any weights show the masks (layer_masks makes every activation positive): converted ones cost
    # no JAX program, where a Flax init would compile each of its ops.
    params = twin_models("dropout")[2]
    masks = [np.asarray(m) for m in layer_masks(Network("dropout").graph, params, jax.random.PRNGKey(1))]
    assert [m.shape[1] for m in masks] == [400, 120, 84]
    r = max_mask_correlation(masks)
    print(f"max |correlation| between the three layers' masks: {r:.4f} (tol {MASK_CORRELATION_MAX})")
    assert r <= MASK_CORRELATION_MAX
    # Negative control: one mask reused by all three layers (a single key, no per-layer fold).
    one = masks[0]
    assert max_mask_correlation([one, one[:, :120], one[:, :84]]) > MASK_CORRELATION_MAX
