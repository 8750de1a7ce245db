"""The whole pipeline agrees: same batches, interchangeable checkpoints, same learning curves."""
import functools

import jax
import numpy as np
import pytest
import torch
from scipy import stats

from experiment.lanes import plan_lanes
from experiment.split import EpochBatches, epoch_order, make_splits
from flax_impl import evaluate as flax_evaluate
from flax_impl import train as flax_train
from flax_impl.convert import flax_to_torch, torch_to_flax
from flax_impl.device import put
from flax_impl.trainer import FlaxTrainer
from parity_tests import helpers
from parity_tests.tolerances import (
    CURVE_EPOCHS,
    CURVE_IMAGES,
    CURVE_MEAN_ACC_POINTS,
    CURVE_SEEDS,
    CURVE_WELCH_P_MIN,
    TOP2_MARGIN,
)
from torch_ref import evaluate as torch_evaluate
from torch_ref import train as torch_train
from torch_ref.models import build_model as build_torch
from torch_ref.trainer import pick_device, predict


def make_trainer(framework, model, splits, seed=0, engine="tutorial", **flax_flags):
    """One lane of `model`, on the suite's device; Flax one jit call per batch unless told."""
    if framework == "torch":
        config = torch_train.default(model=model, seed=seed, device=helpers.device_flag(), no_progress=True,
                                     engine=engine)
        return torch_train.BACKEND.make_trainer(config, plan_lanes(config), splits)
    config = flax_train.default(model=model, seed=seed, device=helpers.device_flag(), no_progress=True,
                                **{"fuse": "step", **flax_flags})
    return FlaxTrainer(config, plan_lanes(config), splits)


@pytest.fixture(scope="module")
def small_splits(cifar10):
    return make_splits(cifar10, subset=1000)


@pytest.fixture(scope="module")
def epoch_1_order(small_splits):
    return epoch_order(len(small_splits.train_x), seed=3, epoch=1)


@pytest.fixture(scope="module")
def torch_batches(small_splits, epoch_1_order):
    """The normalised batches PyTorch's trainer feeds its model for one epoch's order."""
    seen = []
    tt = make_trainer("torch", "baseline", small_splits)
    hook = tt.torch_lanes[0].model.register_forward_pre_hook(
        lambda m, a: seen.append(a[0].cpu().numpy().transpose(0, 2, 3, 1).copy()))
    tt.train_epoch(1, EpochBatches(epoch_1_order[None], tt.batch_size))
    hook.remove()
    return seen


@pytest.fixture(scope="module")
def flax_trainer(small_splits):
    """One Flax trainer for the check and its negative control."""
    return make_trainer("flax", "baseline", small_splits)


def flax_batches(ft, order, shuffle=False):
    """The normalised batches Flax's trainer feeds its model for one epoch's order; `shuffle`
    (negative control) feeds each batch's images in another order than their labels. The trainer's
    compiled step is replaced by a recorder of its inputs: this check is about what goes in (which
    images, in which order, normalised how); what a step computes is the trajectory tests' check,
    and two more training programs (full and partial batch) would cost seconds each on a GPU."""
    seen, step = [], ft.program.step

    def recorder(state, rates, x, y, idx):  # the per-step path gathers batch `idx` of the device-resident data
        idx = np.asarray(idx)[0]
        if shuffle:
            idx = np.random.default_rng(len(seen)).permutation(idx)
        seen.append(np.asarray(x)[idx])
        return state, {"loss": np.zeros(1, np.float32), "acc": np.zeros(1, np.int32)}  # as a step's, per lane

    ft.program.step = recorder
    try:
        ft.train_epoch(1, EpochBatches(order[None], ft.batch_size))
    finally:
        ft.program.step = step
    return seen


@pytest.mark.parametrize("shuffle", [False, True], ids=["real", "negative-control-shuffled-batch"])
def test_both_frameworks_see_identical_batches(torch_batches, flax_trainer, epoch_1_order, shuffle):
    seen = {"torch": torch_batches, "flax": flax_batches(flax_trainer, epoch_1_order, shuffle)}
    same = len(seen["torch"]) == len(seen["flax"]) == 13 and all(
        np.array_equal(a, b) for a, b in zip(seen["torch"], seen["flax"]))  # 800 = 12 x 64 + 32
    assert same != shuffle


def top2_ambiguous(logits):
    top = np.sort(logits, axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0]) <= TOP2_MARGIN


def compare_predictions(a, b):
    pa, pb = a.argmax(1), b.argmax(1)
    disagree = pa != pb
    print(f"  predictions differ on {disagree.sum()} of {len(pa)} images, max |logit diff| {np.abs(a - b).max():.2e}")
    assert not (disagree & ~top2_ambiguous(a)).any()
    return pa


@pytest.mark.slow  # trains on real data, evaluates 10,000 test images
def test_checkpoints_interoperate(tmp_path, real_data, cifar10, curve_splits):
    test_x = curve_splits.test_x  # every split normalises the whole test set alike
    # A torch_ref best.pt, evaluated by both frameworks on the 10,000 test images.
    dev = ["--device", helpers.device_flag()]
    torch_train.main(["--data", real_data, "--subset", "5000", "--epochs", "1", "--model", "baseline",
                      "--out", str(tmp_path / "t"), "--no-progress", *dev])
    ckpt = str(tmp_path / "t" / "baseline" / "best.pt")
    t_dev = f_dev = helpers.device_flag()
    _, torch_predict = torch_evaluate.load_predictor(ckpt, t_dev)
    _, flax_predict = flax_evaluate.load_predictor(ckpt, f_dev)
    preds = compare_predictions(torch_predict(test_x), flax_predict(test_x))
    cm_t = torch_evaluate.main(["--ckpt", ckpt, "--data", real_data, "--out", str(tmp_path / "et"), *dev])
    cm_f = flax_evaluate.main(["--ckpt", ckpt, "--data", real_data, "--out", str(tmp_path / "ef"), *dev])
    cm_t, cm_f = cm_t["confusion_matrix"], cm_f["confusion_matrix"]
    assert cm_t == cm_f and np.trace(np.array(cm_t)) == (preds == cifar10.test_y).sum()
    # A Flax checkpoint, evaluated by PyTorch after conversion.
    from flax_impl import train as flax_train
    # 10,000 images as in the learning-curve test: the same training and evaluation programs
    # (same shapes, no partial last batch), compiled once for both.
    flax_train.main(["--data", real_data, "--subset", str(CURVE_IMAGES), "--epochs", "1", "--model", "dropout",
                     "--out", str(tmp_path / "f"), "--no-progress", *dev])
    fckpt = str(tmp_path / "f" / "dropout" / "best.msgpack")
    _, _, params = flax_evaluate.load_params(fckpt)
    tm = build_torch("dropout")
    tm.load_state_dict(flax_to_torch(params))
    tm.to(pick_device(t_dev))
    compare_predictions(flax_evaluate.load_predictor(fckpt, f_dev)[1](test_x),
                        predict(tm, test_x, pick_device(t_dev)).numpy())


@pytest.mark.slow  # runs with the check it controls, test_checkpoints_interoperate (slow)
def test_negative_control_interop_check_rejects_untransposed_conversion(real_batch):
    """Converting fc weights without the (out, in) -> (in, out) transpose must change predictions
    (on the suite's 512 real images: the forward program the logits tests compiled)."""
    x = real_batch[0]
    torch.manual_seed(0)
    tm = build_torch("baseline")
    wrong = torch_to_flax(tm.state_dict())
    wrong["fc2"]["kernel"] = wrong["fc2"]["kernel"].reshape(84, 120).T.reshape(120, 84)  # a plain reshape
    from flax_impl.models import Network
    with pytest.raises(AssertionError):
        compare_predictions(predict(tm, x, "cpu").numpy(), helpers.flax_logits(Network("baseline"), wrong, x))


@functools.cache
def lanes_opt_init(tx):
    """The optimiser's state of new parameters [lanes, ...]: one program, not one eager op per parameter."""
    return jax.jit(jax.vmap(tx.init))


def train_curves(framework, model, seed, splits, epochs, flax_trainer=None):
    """Validation accuracy per epoch, starting from the PyTorch init of `seed` in both frameworks.
    Flax: `flax_trainer`, when given, is a trainer of the same model and data whose compiled
    programs are reused, its state started afresh from `seed` (init key and dropout run key)."""
    torch.manual_seed(seed)
    init = {k: v.clone() for k, v in build_torch(model).state_dict().items()}
    if framework == "torch":
        # The tutorial's maths on PyTorch's fastest single lane: on a GPU the CUDA graph engine (the
        # tutorial's loop is host-bound there: two syncs a step), on the CPU the fast engine, which
        # is the tutorial engine bit for bit there (tests/test_engines.py) without its per-step syncs.
        engine = "cudagraph" if helpers.device_flag() == "gpu" else "fast"
        trainer = make_trainer("torch", model, splits, seed, engine=engine)
        trainer.torch_lanes[0].model.load_state_dict(init)
    else:
        trainer = flax_trainer or make_trainer("flax", model, splits, seed, fuse="scan")
        p = trainer.program
        with jax.default_matmul_precision(trainer.precision):  # as the trainer built it: same program
            state = p.init(put(np.array([seed]), p.lanes_sh))  # the seed's own dropout run key
        params = jax.tree_util.tree_map(lambda a: a[None], torch_to_flax(init))
        fresh = {"params": params, "opt_state": lanes_opt_init(trainer.tx)(params)}
        # Laid out as the trainer's own state: its compiled epoch is then the one `flax_impl.train` runs
        # (another layout of the inputs would be another program).
        trainer.state = {**state, **jax.tree_util.tree_map(lambda v, own: jax.device_put(v, own.sharding),
                                                           fresh, {k: state[k] for k in fresh})}
    accs = []
    for epoch in range(1, epochs + 1):
        order = epoch_order(len(splits.train_x), seed, epoch)[None]
        trainer.train_epoch(epoch, EpochBatches(order, trainer.batch_size))
        accs.append(float(trainer.validate()["val_acc"][0]))
    return accs


@pytest.mark.slow  # 3 epochs x 3 seeds on real data, both frameworks
@pytest.mark.parametrize("model", ["baseline", "dropout"])
def test_learning_curves_agree_on_real_data(model, curve_splits):
    """3 epochs on 10,000 real images, 3 seeds, from the same converted init in both frameworks."""
    splits, seeds, epochs = curve_splits, CURVE_SEEDS, CURVE_EPOCHS
    ft = make_trainer("flax", model, splits, seeds[0], fuse="scan")  # one set of programs for the seeds
    acc = {"torch": np.array([train_curves("torch", model, s, splits, epochs) for s in seeds]),
           "flax": np.array([train_curves("flax", model, s, splits, epochs, ft) for s in seeds])}
    gap = np.abs(acc["torch"].mean(0) - acc["flax"].mean(0)) * 100
    p = stats.ttest_ind(acc["torch"][:, -1], acc["flax"][:, -1], equal_var=False).pvalue
    p = 1.0 if np.isnan(p) else p  # identical samples give nan
    print(f"{model}: mean val acc per epoch torch {np.round(100 * acc['torch'].mean(0), 2)} "
          f"flax {np.round(100 * acc['flax'].mean(0), 2)}; max gap {gap.max():.2f} points; Welch p {p:.3f}")
    assert gap.max() <= CURVE_MEAN_ACC_POINTS
    assert p > CURVE_WELCH_P_MIN
