"""python -m flax_impl.evaluate --ckpt runs/flax/baseline/best.msgpack: test accuracy, per-class
accuracy and confusion_matrix.png. Also takes a PyTorch checkpoint (torch_ref's best.pt, or the
tutorial's own best_ckpt.pth), converted exactly."""
import jax
import numpy as np

from experiment.checkpoints import FILE_LIMIT, STATE_DICT_ONLY
from experiment.entry import evaluate_main
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS
from experiment.sources.bounded import read_regular
from experiment.split import EVAL_BATCH
from flax_impl.checkpoint import check_shapes, load_checkpoint
from flax_impl.convert import TORCH_NAMES, torch_to_flax
from flax_impl.device import pick_device
from flax_impl.models import Network
from flax_impl.steps import init_state, logits_of, make_optimizer
from flax_impl.trainer import JAX_PRECISION

FRAMEWORK = FRAMEWORKS["flax"]


def load_weights(path):
    """(model name, Network, params, Described) from a Flax checkpoint or a PyTorch one
    (this project's, or the tutorial's bare state_dict), told apart by their content, not their name."""
    blob = read_regular(path, FILE_LIMIT, path)
    if blob[:2] in (b"PK", b"\x80\x02"):  # torch.save's zip archive, or its older pickle
        described, params = load_torch_params(path)
    else:
        try:
            described, params = load_checkpoint(path, blob)
        except UserError as flax_error:
            try:  # not Flax: perhaps PyTorch after all
                described, params = load_torch_params(path)
            except UserError:
                raise flax_error from None
    network = Network(described.model or "baseline")
    # The model's parameter shapes, traced only: nothing is compiled or run (each op of an eager init
    # would be compiled on its own, seconds on a GPU).
    check_shapes(path, params, jax.eval_shape(lambda: init_state(network, make_optimizer(1e-3), 0))["params"])
    return described.model or STATE_DICT_ONLY, network, params, described


def load_params(path):
    """(model name, Network, params) of a checkpoint (load_weights): nnx.merge(network.graph, params) is
    the model holding the weights."""
    return load_weights(path)[:3]


def load_torch_params(path):
    """A PyTorch checkpoint's weights, converted exactly (torch is imported only here)."""
    try:
        from torch_ref.checkpoint import load_checkpoint as load_torch
    except ImportError:
        raise UserError(f"{path} is a PyTorch checkpoint; reading it needs torch (pip install torch)") from None
    described, sd = load_torch(path)
    extra = sorted(set(sd) - set(TORCH_NAMES))
    if extra:  # as PyTorch's strict load_state_dict refuses them in torch_ref.evaluate
        raise UserError(f"{path}: state_dict has unexpected {', '.join(extra)}: not the tutorial's LeNet")
    try:
        return described, torch_to_flax(sd)
    except KeyError as e:
        raise UserError(f"{path}: state_dict has no {e.args[0]}: not convertible to the Flax model") from None


def load_predictor(path, device, precision=None):
    """(model name, predict(x) -> logits) at `precision`, by default the one the checkpoint was
    trained at (on a GPU, JAX's own default would be TF32); predict.precision says which,
    predict.epoch which epoch the weights are from (None: not recorded)."""
    name, network, params, described = load_weights(path)
    dev = pick_device(device)
    params = jax.device_put(params, dev)
    apply = jax.jit(lambda p, x: logits_of(network.graph, p, x))

    def predict(x):
        with jax.default_matmul_precision(JAX_PRECISION[predict.precision]):  # part of the compile key
            return np.concatenate([np.asarray(apply(params, jax.device_put(x[i:i + EVAL_BATCH], dev)))
                                   for i in range(0, len(x), EVAL_BATCH)])

    predict.precision, predict.epoch = precision or described.precision, described.epoch
    return name, predict


main = evaluate_main(FRAMEWORK, load_predictor)


if __name__ == "__main__":
    main()
