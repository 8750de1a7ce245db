"""Same weights, same images: same logits, loss, gradients and Adam trajectory in both frameworks."""
import numpy as np
import pytest
import torch
from flax.errors import FlaxError

from flax_impl.convert import flax_to_torch, torch_to_flax
from flax_impl.models import Network, count_parameters
from parity_tests.helpers import (
    device_flag,
    flax_logits,
    flax_loss_and_grads,
    flax_param_shapes,
    leaves,
    on_device,
    torch_logits,
    torch_loss_and_grads,
    twin_models,
)
from parity_tests.mutants import BrokenNetwork
from parity_tests.tolerances import GRAD_RTOL_OF_MAX, LOGITS_ATOL, LOSS_ATOL
from torch_ref.models import build_model as build_torch

MODELS = ["baseline", "dropout"]


@pytest.mark.parametrize("name", MODELS)
def test_structure_and_round_trips_are_exact(name):
    tm, fm, params = twin_models(name)
    assert {k: v.shape for k, v in leaves(params).items()} == flax_param_shapes(fm)  # the Flax init's tree
    assert count_parameters(params) == sum(p.numel() for p in tm.parameters()) == 62006
    sd = tm.state_dict()
    back = flax_to_torch(torch_to_flax(sd))
    assert all(torch.equal(back[k], sd[k].cpu()) for k in sd)  # compared on the CPU, wherever sd lives
    again = torch_to_flax(flax_to_torch(params))  # Flax-layout parameters there and back
    for k, v in leaves(params).items():
        np.testing.assert_array_equal(leaves(again)[k], v)


@pytest.mark.parametrize("name", MODELS)
def test_eval_logits_agree_on_real_images(name, real_batch):
    x, _ = real_batch
    tm, fm, params = twin_models(name)
    diff = np.abs(torch_logits(tm, x) - flax_logits(fm, params, x)).max()
    print(f"{name}: max |logit diff| at init {diff:.2e} (tol {LOGITS_ATOL})")
    assert diff <= LOGITS_ATOL


@pytest.mark.parametrize("name", MODELS)
def test_loss_and_every_gradient_agree(name, real_batch):
    """Eval mode (no dropout) gradients; dropout's own part is covered by the injected-mask test."""
    x, y = real_batch[0][:64], real_batch[1][:64]
    tm, fm, params = twin_models(name, seed=1)
    lt, gt = torch_loss_and_grads(tm, x, y)
    lf, gf = flax_loss_and_grads(fm, params, x, y)
    print(f"{name}: |loss diff| {abs(lt - lf):.2e} (tol {LOSS_ATOL})")
    assert abs(lt - lf) <= LOSS_ATOL, (lt, lf)
    worst = 0.0
    for k, g in leaves(gt).items():
        f = leaves(gf)[k]
        tol = GRAD_RTOL_OF_MAX * max(1.0, np.abs(g).max())
        assert np.abs(g - f).max() <= tol, (k, np.abs(g - f).max(), tol)
        worst = max(worst, np.abs(g - f).max() / max(1.0, np.abs(g).max()))
    print(f"{name}: max gradient diff / max(1, max|g|) {worst:.2e} (tol {GRAD_RTOL_OF_MAX})")


def forward_diff(flax_model, x, name="baseline"):
    """Max |logit difference| against PyTorch with converted weights; inf when it cannot even run."""
    tm, _, params = twin_models(name)
    try:
        return float(np.abs(torch_logits(tm, x) - flax_logits(flax_model, params, x)).max())
    except (ValueError, TypeError, FlaxError) as e:  # shape mismatch: the bug changed the architecture
        print(f"  {type(e).__name__}: {str(e).splitlines()[0][:100]}")
        return float("inf")


def test_the_mutant_without_bugs_is_correct(real_batch):
    assert forward_diff(BrokenNetwork(), real_batch[0]) <= LOGITS_ATOL


@pytest.mark.parametrize("bug", [dict(flatten_nhwc=True), dict(same_padding=True), dict(pool_stride_1=True)],
                         ids=str)
def test_negative_control_forward_bugs_are_caught(bug, real_batch):
    diff = forward_diff(BrokenNetwork(**bug), real_batch[0])
    print(f"{bug}: max |logit diff| {diff:.2e}")
    assert diff > LOGITS_ATOL


@pytest.mark.slow  # 300 training steps on real data
def test_forward_agrees_after_training(real_batch, tmp_path, real_data):
    """A checkpoint the test trains (300 steps on real images) converted to Flax: same logits."""
    from torch_ref import train
    train.main(["--data", real_data, "--subset", "24000", "--epochs", "1", "--model", "dropout",
                "--out", str(tmp_path), "--no-progress", "--device", device_flag()])  # 19,200 images / 64 = 300 steps
    tm = on_device(build_torch("dropout"))
    tm.load_state_dict(torch.load(tmp_path / "dropout" / "last.pt", weights_only=True))  # the tutorial's way
    x = real_batch[0]
    diff = np.abs(torch_logits(tm, x) - flax_logits(Network("dropout"), torch_to_flax(tm.state_dict()), x)).max()
    print(f"trained DropoutModel: max |logit diff| {diff:.2e} (tol {LOGITS_ATOL})")
    assert diff <= LOGITS_ATOL


def test_negative_control_structure_check_rejects_same_padding():
    """SAME padding leaves 8x8 maps: fc1 would need 1024 inputs, so the parameter trees differ."""
    from flax import nnx
    # Shapes only: nnx.eval_shape traces the init without computing (or compiling) anything.
    broken = nnx.state(nnx.eval_shape(lambda: BrokenNetwork(same_padding=True).build(nnx.Rngs(0))), nnx.Param)
    _, _, params = twin_models("baseline")
    assert {k: v.shape for k, v in leaves(nnx.to_pure_dict(broken)).items()} != \
        {k: v.shape for k, v in leaves(params).items()}


def test_negative_control_gradient_check_rejects_nhwc_flatten(real_batch):
    x, y = real_batch[0][:64], real_batch[1][:64]
    tm, _, params = twin_models("baseline", seed=1)
    _, gt = torch_loss_and_grads(tm, x, y)
    _, gf = flax_loss_and_grads(BrokenNetwork(flatten_nhwc=True), params, x, y)
    worst = max(np.abs(leaves(gt)[k] - g).max() / max(1.0, np.abs(leaves(gt)[k]).max()) for k, g in leaves(gf).items())
    print(f"NHWC flatten: max gradient diff / max(1, max|g|) {worst:.2e}")
    assert worst > GRAD_RTOL_OF_MAX
