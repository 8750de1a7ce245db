"""The optimizer, the train step and the program that runs it over lanes: pure, jit-compiled functions.

State is a plain dict {params, opt_state, step, key}: no hidden RNG. params is the model's nnx.Param
state as a plain dict (nnx.to_pure_dict: the tree checkpoints hold); each function rebuilds the
model from its graph (nnx.split once: flax_impl.models.Network.graph) with nnx.merge, which costs
tracing only. Each step's dropout key is fold_in(run key, global step), so a run is a function of its
seed alone; a lane's dropout rate is an input beside its state. `make_epoch_fn` runs a whole epoch's
full batches as one compiled lax.scan over the device-resident data; LaneProgram maps every function
over a leading lane axis (jax.vmap; squeezed away for one lane, see over_lanes) and lays it out on a
(lanes, data) mesh (flax_impl.device): the state's lane axis is sharded over `lanes`, each batch over
`data` with --data-parallel. The data sit on the devices once; only the per-epoch batch indices travel.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from experiment.metrics import TRAIN_EVAL, chunk_average, image_sum
from experiment.split import eval_batches, split_full
from flax_impl.device import put, sharding
from flax_impl.options import FlaxOptions


def make_optimizer(lr):
    # PyTorch Adam defaults: betas (0.9, 0.999), eps 1e-8 added outside the sqrt (optax's eps).
    return optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)


def init_state(network, tx, seed):
    """Params of `network` (flax_impl.models.Network) from `seed` (the init key, as nnx.Rngs(params=...)),
    run key for dropout derived from the same seed."""
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    params = nnx.to_pure_dict(nnx.state(network.build(nnx.Rngs(params=init_key)), nnx.Param))
    return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32), "key": run_key}


def logits_of(graph, params, x, rate=None, key=None):
    """The model's logits: rebuilt from its graph and params (nnx.merge), called as its class says;
    `rate` and `key`: a training step's dropout rate and key (no key: evaluation, no dropout)."""
    model = nnx.merge(graph, params)
    return model(x) if key is None else model(x, rate, nnx.Rngs(dropout=key))


def loss_and_logits(graph, params, x, y, rate=None, key=None):
    """(mean cross-entropy, logits) of a batch (logits_of)."""
    logits = logits_of(graph, params, x, rate, key)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits


def batch_metrics(logits, y, loss):
    """This framework's per-batch metrics (experiment.metrics): a float is a batch mean, an int a count."""
    return {"loss": loss, "acc": jnp.sum(jnp.argmax(logits, -1) == y)}


def zeros_of(f, *args):
    """Zeros shaped like f(*args)'s outputs: the start of a sum over a scan."""
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(f, *args))


def make_train_step(graph, tx, micro_batch):
    """(state, rate, x, y) -> (state, metrics); metrics as batch_metrics (loss: the batch mean, as
    CrossEntropyLoss); `rate`: the lane's dropout rate.

    A batch that is a multiple of `micro_batch` is processed in chunks of that size whose
    gradients are averaged (see flax_impl.options.MICRO_BATCH); micro_batch 0 or None: never.
    """
    grad_fn = jax.value_and_grad(lambda p, x, y, r, k: loss_and_logits(graph, p, x, y, r, k), has_aux=True)

    def grads_and_metrics(params, x, y, rate, key):
        (loss, logits), grads = grad_fn(params, x, y, rate, key)
        return grads, batch_metrics(logits, y, loss)

    def chunked(params, x, y, rate, key):
        n = x.shape[0] // micro_batch
        xs, ys = split_full(x, micro_batch)[0], split_full(y, micro_batch)[0]

        def body(acc, chunk):
            i, xc, yc = chunk
            out = grads_and_metrics(params, xc, yc, rate, jax.random.fold_in(key, i))
            return jax.tree_util.tree_map(jnp.add, acc, out), None

        zero = zeros_of(grads_and_metrics, params, xs[0], ys[0], rate, key)
        (grads, metrics), _ = jax.lax.scan(body, zero, (jnp.arange(n), xs, ys))
        means = {k: chunk_average(k, v, n) for k, v in metrics.items()}
        return jax.tree_util.tree_map(lambda g: g / n, grads), means

    def step(state, rate, x, y):
        key = jax.random.fold_in(state["key"], state["step"])
        split = micro_batch and x.shape[0] > micro_batch and x.shape[0] % micro_batch == 0
        grads, metrics = (chunked if split else grads_and_metrics)(state["params"], x, y, rate, key)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new = dict(state, params=optax.apply_updates(state["params"], updates), opt_state=opt_state,
                   step=state["step"] + 1)
        return new, metrics

    return step


def make_epoch_fn(step, unroll=1):
    """(state, rate, data_x, data_y, batch_idx[nb, B]) -> (state, {metric: per-step values[nb]}): one scan,
    `unroll` steps per loop iteration (fewer iterations for the device's loop to launch; the same
    steps in the same order)."""

    def epoch(state, rate, data_x, data_y, batch_idx):
        return jax.lax.scan(lambda st, idx: step(st, rate, data_x[idx], data_y[idx]), state, batch_idx, unroll=unroll)

    return epoch


def make_eval_fn(graph):
    """(params, x[nb, B, ...], y[nb, B]) -> {metric: sum over the images}, deterministic."""

    def metrics(params, x, y):
        loss, logits = loss_and_logits(graph, params, x, y)
        return batch_metrics(logits, y, loss)

    def evaluate(params, xs, ys):
        def body(acc, xy):
            m = metrics(params, *xy)
            return {k: acc[k] + image_sum(k, v, xy[1].shape[0]) for k, v in m.items()}, None

        return jax.lax.scan(body, zeros_of(metrics, params, xs[0], ys[0]), (xs, ys))[0]

    return evaluate


def over_lanes(f, n_lanes, in_axes):
    """jax.vmap(f) over a leading lane axis. With one lane the axis is squeezed away instead:
    XLA's CPU batched matmuls are ~1.5x slower than plain ones, even for a batch of one."""
    if n_lanes > 1:
        return jax.vmap(f, in_axes=in_axes)
    tm = jax.tree_util.tree_map

    def one(*args):
        args = [tm(lambda a: a[0], x) if ax == 0 else x for x, ax in zip(args, in_axes)]
        return tm(lambda a: a[None], f(*args))

    return one


class LaneProgram:
    """init(seeds) -> state; epoch(state, rates, x, y, batch_idx[lanes, nb, B]) and step(state, rates,
    x, y, idx[lanes, B]) -> (state, per-step metrics); evaluate(params, xs, ys) -> metric sums. A
    lane's dropout rate (rates[lane]) is an input of the program, as its state is: lanes of any rates
    share it (a BaseLine network ignores them).

    By default nothing is donated: the state an epoch started from stays readable, so the checkpoints
    of epoch N can be written from it while epoch N+1 trains (it costs one more copy of a state that
    is 0.75 MB per lane). With options.donate, epoch and step consume the state they are given.
    `options` (flax_impl.options.FlaxOptions): data_parallel, micro_batch, scan_unroll, donate, none of
    which changes what a step computes."""

    def __init__(self, network, tx, mesh, n_lanes, options=FlaxOptions()):
        self.lanes_sh = sharding(mesh, "lanes")                   # state, rates, keys: leading lane axis
        self.batch_sh = sharding(mesh, "lanes", None, "data")     # batch indices [lane, step, batch]
        self.replicated = sharding(mesh)
        n = n_lanes
        self.init = jax.jit(over_lanes(lambda seed: init_state(network, tx, seed), n, (0,)),
                            out_shardings=self.lanes_sh)
        # Chunking a batch into micro-batches (a CPU cache trick) would fight the batch sharding.
        step = make_train_step(network.graph, tx, micro_batch=None if options.data_parallel else options.micro_batch)
        # Per-lane batches are gathered inside the compiled code: data stays put, indices travel.
        gather_step = lambda st, rate, x, y, idx: step(st, rate, x[idx], y[idx])  # noqa: E731
        donate = (0,) if options.donate else ()
        lanes_in = (0, 0, None, None, 0)  # state, rate, data x, data y, batch indices
        self.step = jax.jit(over_lanes(gather_step, n, lanes_in), donate_argnums=donate)
        self.epoch = jax.jit(over_lanes(make_epoch_fn(step, options.scan_unroll), n, lanes_in), donate_argnums=donate)
        self.evaluate = jax.jit(over_lanes(make_eval_fn(network.graph), n, (0, None, None)))

    def replicate(self, x):
        return put(x, self.replicated)


class DeviceData:
    """The training images and the sets each epoch evaluates, on the devices once, replicated.
    evaluated: {split: (evaluation batches, images)}: the validation set ('val') and, with
    `eval_train`, the training images again ('train_eval'; a second copy: the training program
    gathers its batches from the first)."""

    def __init__(self, splits, program, eval_train=False):
        rep = program.replicate
        as_batches = lambda x, y: [(rep(bx), rep(by)) for bx, by in eval_batches(x, y.astype(np.int32))]  # noqa: E731
        self.train_x, self.train_y = rep(splits.train_x), rep(splits.train_y.astype(np.int32))
        self.n_train = len(splits.train_x)
        self.evaluated = {"val": (as_batches(splits.val_x, splits.val_y), len(splits.val_x))}
        if eval_train:
            self.evaluated[TRAIN_EVAL] = (as_batches(splits.train_x, splits.train_y), self.n_train)
