"""python -m flax_impl.evaluate --ckpt runs/flax/baseline/best.msgpack: test accuracy, per-class
accuracy and confusion_matrix.png. Also takes a torch_ref `best.pt` (converted exactly)."""
import jax
import numpy as np

from experiment.batching import EVAL_BATCH
from experiment.entry import evaluate_main
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS
from flax_impl.checkpoint import check_shapes, load_checkpoint
from flax_impl.convert import torch_to_flax
from flax_impl.device import pick_device
from flax_impl.models import build_model
from flax_impl.steps import init_state, make_optimizer

FRAMEWORK = FRAMEWORKS["flax"]


def load_params(path):
    """(model name, dropout rate, params) from a Flax .msgpack or a PyTorch .pt checkpoint."""
    if path.endswith(".pt"):
        from torch_ref.checkpoint import load_checkpoint as load_torch
        ckpt = load_torch(path)
        try:
            params = torch_to_flax(ckpt["state_dict"])
        except KeyError as e:
            raise UserError(f"{path}: state_dict has no {e.args[0]}: not convertible to the Flax model") from None
    else:
        ckpt = load_checkpoint(path)
        params = ckpt["params"]
    name, rate = ckpt["model"], ckpt.get("config", {}).get("dropout_rate", 0.5)
    model = build_model(name, rate)
    check_shapes(path, params, init_state(model, make_optimizer(1e-3), 0)["params"])
    return name, model, params


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
