"""python -m flax_impl.evaluate --ckpt runs/flax/baseline/best.msgpack: test accuracy, per-class
accuracy and confusion_matrix.png. Also takes a PyTorch checkpoint (torch_ref's best.pt, or the
tutorial's own best_ckpt.pth), converted exactly."""
import jax
import numpy as np

from experiment.batching import EVAL_BATCH
from experiment.checkpoints import STATE_DICT_ONLY
from experiment.entry import evaluate_main
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS
from experiment.sources.bounded import read_regular
from flax_impl.checkpoint import FILE_LIMIT, check_shapes, load_checkpoint
from flax_impl.convert import TORCH_NAMES, torch_to_flax
from flax_impl.device import pick_device
from flax_impl.models import build_model
from flax_impl.steps import init_state, make_optimizer

FRAMEWORK = FRAMEWORKS["flax"]


def load_params(path):
    """(model name, model, params) from a Flax checkpoint or a PyTorch one (this project's, or the
    tutorial's bare state_dict), told apart by their content, not their name."""
    blob = read_regular(path, FILE_LIMIT, path)
    if blob[:2] in (b"PK", b"\x80\x02"):  # torch.save's zip archive, or its older pickle
        name, rate, params = load_torch_params(path)
    else:
        try:
            name, rate, params = load_checkpoint(path, blob)
        except UserError as flax_error:
            try:  # not Flax: perhaps PyTorch after all
                name, rate, params = load_torch_params(path)
            except UserError:
                raise flax_error from None
    model = build_model(name or "baseline", rate)
    check_shapes(path, params, init_state(model, make_optimizer(1e-3), 0)["params"])
    return name or STATE_DICT_ONLY, model, params


def load_torch_params(path):
    """A PyTorch checkpoint's weights, converted exactly (torch is imported only here)."""
    try:
        from torch_ref.checkpoint import load_checkpoint as load_torch
    except ImportError:
        raise UserError(f"{path} is a PyTorch checkpoint; reading it needs torch (pip install torch)") from None
    name, rate, sd = load_torch(path)
    extra = sorted(set(sd) - set(TORCH_NAMES))
    if extra:  # as PyTorch's strict load_state_dict refuses them in torch_ref.evaluate
        raise UserError(f"{path}: state_dict has unexpected {', '.join(extra)}: not the tutorial's LeNet")
    try:
        return name, rate, torch_to_flax(sd)
    except KeyError as e:
        raise UserError(f"{path}: state_dict has no {e.args[0]}: not convertible to the Flax model") from None


def load_predictor(path, device):
    name, model, params = load_params(path)
    dev = pick_device(device)
    params = jax.device_put(params, dev)
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))

    def predict(x):
        return np.concatenate([np.asarray(apply(params, jax.device_put(x[i:i + EVAL_BATCH], dev)))
                               for i in range(0, len(x), EVAL_BATCH)])

    return name, predict


main = evaluate_main(FRAMEWORK, load_predictor)


if __name__ == "__main__":
    main()
