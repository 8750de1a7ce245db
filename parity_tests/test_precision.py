"""--precision: what each framework is told, and (on a GPU) that the TF32 tier agrees within its own
tolerance while the full-float32 tolerance rejects it, which proves the switch is real."""
import jax
import numpy as np
import pytest

from experiment.lanes import plan_lanes
from experiment.sources.synthetic import make_synthetic
from experiment.split import EpochBatches, epoch_order, make_splits
from flax_impl import train as flax_train
from flax_impl.trainer import FlaxTrainer
from parity_tests.helpers import (
    flax_logits,
    flax_loss_and_grads,
    leaves,
    lowered_programs,
    torch_logits,
    torch_loss_and_grads,
    twin_models,
)
from parity_tests.tolerances import LOGITS_ATOL, TF32_RTOL_OF_MAX
from torch_ref import train as torch_train
from torch_ref.precision import current_precision, set_precision
from torch_ref.trainer import TorchTrainer

HLO_PRECISION = {"highest": "HIGHEST", "tf32": "HIGH"}  # StableHLO's names for JAX's 'highest', 'tensorfloat32'


@pytest.fixture
def restore_precision():
    yield
    set_precision("highest")


@pytest.mark.parametrize("precision", ["highest", "tf32"])
def test_flax_programs_are_compiled_at_the_precision_asked(precision):
    splits = make_splits(make_synthetic(300, 50, seed=1))
    config = flax_train.default(model="dropout", precision=precision, device="cpu", no_progress=True)
    trainer = FlaxTrainer(config, plan_lanes(config), splits)
    orders = epoch_order(len(splits.train_x), 0, 1)[None]
    for text in lowered_programs(trainer, EpochBatches(orders, config.batch_size)):
        found = {p for p in ("DEFAULT", "HIGHEST", "HIGH") if f"precision = [{p}, {p}]" in text}
        assert found == {HLO_PRECISION[precision]}, found  # every dot and convolution


@pytest.mark.parametrize("precision, mode", [("highest", "ieee"), ("tf32", "tf32")])
def test_torch_trainer_sets_cublas_and_cudnn_precision(precision, mode, restore_precision):
    set_precision("tf32" if precision == "highest" else "highest")  # start from the other one
    config = torch_train.default(model="baseline", precision=precision, no_progress=True)
    TorchTrainer(config, plan_lanes(config), make_splits(make_synthetic(300, 50, seed=1)))
    assert current_precision() == {"matmul": mode, "conv": mode}


def max_rel(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(a).max()))


@pytest.fixture
def tf32(compute_device, restore_precision):
    if compute_device != "gpu":
        pytest.skip("TF32 exists on GPUs only; on the CPU both settings compute full float32")
    set_precision("tf32")
    with jax.default_matmul_precision("tensorfloat32"):
        yield


@pytest.mark.parametrize("name", ["baseline", "dropout"])
def test_tf32_tier_logits_and_gradients_agree(name, real_batch, tf32):
    x, y = real_batch
    tm, fm, params = twin_models(name, seed=1)
    diff = max_rel(torch_logits(tm, x), flax_logits(fm, params, x))
    print(f"{name} at tf32: logits max diff / max(1, max|logit|) {diff:.2e} (tol {TF32_RTOL_OF_MAX})")
    assert diff <= TF32_RTOL_OF_MAX
    _, gt = torch_loss_and_grads(tm, x[:64], y[:64])
    _, gf = flax_loss_and_grads(fm, params, x[:64], y[:64])
    worst = max(max_rel(g, leaves(gf)[k]) for k, g in leaves(gt).items())
    print(f"{name} at tf32: gradients max diff / max(1, max|g|) {worst:.2e}")
    assert worst <= TF32_RTOL_OF_MAX


def test_negative_control_tf32_breaks_the_full_float32_tolerance(real_batch, tf32):
    """Each framework's TF32 logits differ from its own float32 ones by more than the float32
    tolerances: the switch is real in both."""
    x, y = real_batch
    tm, fm, params = twin_models("baseline", seed=1)
    t_tf32, f_tf32 = torch_logits(tm, x), flax_logits(fm, params, x)
    set_precision("highest")
    with jax.default_matmul_precision("highest"):
        t_full, f_full = torch_logits(tm, x), flax_logits(fm, params, x)
    print(f"TF32 vs float32: torch {np.abs(t_tf32 - t_full).max():.2e}, flax {np.abs(f_tf32 - f_full).max():.2e}")
    assert np.abs(t_tf32 - t_full).max() > LOGITS_ATOL and np.abs(f_tf32 - f_full).max() > LOGITS_ATOL
