"""Build the same model in both frameworks from one torch init, and run it side by side.

A Flax model is named by its network (flax_impl.models.Network, or a mutant's: `build` and `graph`).
The Flax forward and loss-and-gradient are one jit-compiled program per model graph, cached here for the
session: every test that needs a model's forward or gradient (and its negative controls, for the same
model) runs the program another test already compiled. jit compiles once per input shape and matmul precision, so
the cache holds one executable per (model, shape, precision). On a GPU each compile costs about a
second, and running the ops one by one instead (eager) compiles every op separately."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from flax_impl.convert import torch_to_flax
from flax_impl.models import Network
from flax_impl.steps import init_state, logits_of, make_optimizer
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
    return tm, Network(name), torch_to_flax(tm.state_dict())


def nchw(x):
    return on_device(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))


def torch_logits(tm, x):
    tm.eval()
    with torch.no_grad():
        return tm(nchw(x)).cpu().numpy()


@functools.cache  # graphs compare and hash by their structure and settings: one program per model
def forward_program(graph):
    return jax.jit(lambda params, x: logits_of(graph, params, x))


def init_params(fm, seed):
    return init_state(fm, make_optimizer(1e-3), seed)["params"]


def flax_param_shapes(fm):
    """{'conv1/kernel': shape, ...} of the parameters flax_impl's init_state gives `fm`, traced only:
    nothing is compiled (run eagerly, an init compiles each of its ~80 ops on its own)."""
    return {k: v.shape for k, v in named_leaves(jax.eval_shape(lambda: init_params(fm, 0))).items()}


def flax_init_many(fm, seeds):
    """{'conv1/kernel': [len(seeds), ...], ...}: the parameters flax_impl's init_state draws for each
    seed, as one program (each op of an eager init would be compiled on its own). Run once, on the
    CPU it is compiled without LLVM's optimisations: XLA:CPU took ~15 s to optimise its random
    draws, ~3 s not to (2 cores). Not measured on a GPU, so compiled there as usual."""
    seeds = np.asarray(seeds)
    options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
    program = jax.jit(jax.vmap(functools.partial(init_params, fm))).lower(seeds).compile(compiler_options=options)
    return leaves(program(seeds))


def flax_logits(fm, params, x):
    return np.asarray(forward_program(fm.graph)(params, jnp.asarray(x)))


def torch_loss_and_grads(tm, x, y):
    tm.eval()
    tm.zero_grad()
    loss = torch.nn.functional.cross_entropy(tm(nchw(x)), on_device(torch.from_numpy(y)))
    loss.backward()
    grads = torch_to_flax({k: p.grad for k, p in tm.named_parameters()})
    return loss.item(), grads


@functools.cache
def loss_and_grads_program(graph):
    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits_of(graph, p, x), y).mean()
    return jax.jit(jax.value_and_grad(loss_fn))


def flax_loss_and_grads(fm, params, x, y):
    loss, grads = loss_and_grads_program(fm.graph)(params, jnp.asarray(x), jnp.asarray(y))
    return float(loss), jax.tree_util.tree_map(np.asarray, grads)


def named_leaves(tree):
    """{'conv1/kernel': leaf, ...} of a parameter tree."""
    return {"/".join(str(getattr(k, "key", k)) for k in path): v for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def dropout_outputs(model, *args):
    """(logits, [dropout_1's output, dropout_2's, dropout_3's]) of model(*args), through nnx.capture:
    each method's output, kept as an nnx.Intermediate, without touching the model's code."""
    logits, seen = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(*args)
    seen = nnx.to_pure_dict(seen)
    return logits, [seen[f"dropout_{i}"]["__call__"][0] for i in (1, 2, 3)]


def leaves(tree):
    return {k: np.asarray(v) for k, v in named_leaves(tree).items()}


def lowered_programs(trainer, batches):
    """A FlaxTrainer's epoch and evaluation programs as it compiles them (its --precision included),
    as StableHLO text: what the precision tests read."""
    from flax_impl.device import put
    p, d = trainer.program, trainer.data
    with jax.default_matmul_precision(trainer.precision):
        full = put(batches.full, p.batch_sh)
        epoch = p.epoch.lower(trainer.state, trainer.rates, d.train_x, d.train_y, full).as_text()
        xs, ys = d.evaluated["val"][0][0]
        return epoch, p.evaluate.lower(trainer.state["params"], xs, ys).as_text()
