"""Build the same model in both frameworks from one torch init, and run it side by side."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from flax_impl.convert import torch_to_flax
from flax_impl.models import build_model as build_flax
from torch_ref.models import build_model as build_torch

# Where PyTorch runs: 'cpu', or 'cuda' under `pytest parity_tests --device gpu` (set by conftest).
TORCH_DEVICE = "cpu"


def on_device(t):
    return t.to(TORCH_DEVICE)


def device_flag():
    """The suite's device as both command lines name it: 'cpu' or 'gpu'."""
    return "gpu" if TORCH_DEVICE == "cuda" else "cpu"


def twin_models(name, seed=0):
    torch.manual_seed(seed)
    tm = on_device(build_torch(name))
    fm = build_flax(name)
    return tm, fm, torch_to_flax(tm.state_dict())


def nchw(x):
    return on_device(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))


def torch_logits(tm, x):
    tm.eval()
    with torch.no_grad():
        return tm(nchw(x)).cpu().numpy()


def flax_logits(fm, params, x):
    return np.asarray(fm.apply({"params": params}, jnp.asarray(x)))


def torch_loss_and_grads(tm, x, y):
    tm.eval()
    tm.zero_grad()
    loss = torch.nn.functional.cross_entropy(tm(nchw(x)), on_device(torch.from_numpy(y)))
    loss.backward()
    grads = torch_to_flax({k: p.grad for k, p in tm.named_parameters()})
    return loss.item(), grads


def flax_loss_and_grads(fm, params, x, y):
    def loss_fn(p):
        logits = fm.apply({"params": p}, jnp.asarray(x))
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(y)).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    return float(loss), jax.tree_util.tree_map(np.asarray, grads)


def leaves(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}
