"""Pure, jit-compiled training and evaluation functions.

State is a plain dict {params, opt_state, step, key}: no hidden RNG. Each step's dropout key is
fold_in(run key, global step), so a run is a function of its seed alone. `epoch_fn` runs a whole
epoch's full batches as one compiled lax.scan over the device-resident data; `vmap` of the same
functions trains several seeds in one program.
"""
import jax
import jax.numpy as jnp
import optax

from experiment.batching import split_full


def make_optimizer(lr):
    # PyTorch Adam defaults: betas (0.9, 0.999), eps 1e-8 added outside the sqrt (optax's eps).
    return optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)


def init_state(model, tx, seed, rate=None):
    """Params from `seed` (init key), run key for dropout derived from the same seed; `rate`, the
    lane's dropout rate, for a model whose rate is per lane (flax_impl.models.PER_LANE)."""
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, jnp.zeros((1, 32, 32, 3), jnp.float32))["params"]
    state = {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32), "key": run_key}
    return state if rate is None else {**state, "rate": jnp.asarray(rate, jnp.float32)}


def loss_and_logits(model, params, x, y, key, train, rate=None):
    logits = model.apply({"params": params}, x, train=train, rngs={"dropout": key} if train else None, rate=rate)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits


def batch_metrics(logits, y, loss):
    """This framework's per-batch metrics (experiment.metrics): a float is a batch mean, an int a count."""
    return {"loss": loss, "acc": jnp.sum(jnp.argmax(logits, -1) == y)}


def is_mean(x):
    return jnp.issubdtype(x.dtype, jnp.floating)


def zeros_of(f, *args):
    """Zeros shaped like f(*args)'s outputs: the start of a sum over a scan."""
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(f, *args))


# A batch that is a multiple of this is trained in chunks of it, their gradients averaged (the batch's
# gradient, summed in another order): on a CPU a chunk's activations stay in cache, so batch 256 trains
# as fast per image as 64. --micro-batch changes it (0: never), e.g. on a GPU, where chunks serialise.
MICRO_BATCH = 64


def make_train_step(model, tx, micro_batch=MICRO_BATCH):
    """(state, x, y) -> (state, metrics); metrics as batch_metrics (loss: the batch mean, as CrossEntropyLoss).

    A batch that is a multiple of `micro_batch` is processed in chunks of that size whose
    gradients are averaged (see MICRO_BATCH); micro_batch 0 or None: never.
    """
    grad_fn = jax.value_and_grad(lambda p, x, y, k, r: loss_and_logits(model, p, x, y, k, True, r), has_aux=True)

    def grads_and_metrics(params, x, y, key, rate):
        (loss, logits), grads = grad_fn(params, x, y, key, rate)
        return grads, batch_metrics(logits, y, loss)

    def chunked(params, x, y, key, rate):
        n = x.shape[0] // micro_batch
        xs, ys = split_full(x, micro_batch)[0], split_full(y, micro_batch)[0]

        def body(acc, chunk):
            i, xc, yc = chunk
            out = grads_and_metrics(params, xc, yc, jax.random.fold_in(key, i), rate)
            return jax.tree_util.tree_map(jnp.add, acc, out), None

        zero = zeros_of(grads_and_metrics, params, xs[0], ys[0], key, rate)
        (grads, metrics), _ = jax.lax.scan(body, zero, (jnp.arange(n), xs, ys))
        # Means over the chunks; counts stay summed.
        means = {k: v / n if is_mean(v) else v for k, v in metrics.items()}
        return jax.tree_util.tree_map(lambda g: g / n, grads), means

    def step(state, x, y):
        key = jax.random.fold_in(state["key"], state["step"])
        split = micro_batch and x.shape[0] > micro_batch and x.shape[0] % micro_batch == 0
        grads, metrics = (chunked if split else grads_and_metrics)(state["params"], x, y, key, state.get("rate"))
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new = dict(state, params=optax.apply_updates(state["params"], updates), opt_state=opt_state,
                   step=state["step"] + 1)
        return new, metrics

    return step


def make_epoch_fn(step, unroll=1):
    """(state, data_x, data_y, batch_idx[nb, B]) -> (state, {metric: per-step values[nb]}): one scan,
    `unroll` steps per loop iteration (fewer iterations for the device's loop to launch; the same
    steps in the same order)."""

    def epoch(state, data_x, data_y, batch_idx):
        return jax.lax.scan(lambda st, idx: step(st, data_x[idx], data_y[idx]), state, batch_idx, unroll=unroll)

    return epoch


def make_eval_fn(model):
    """(params, x[nb, B, ...], y[nb, B]) -> {metric: sum over the images}, deterministic."""

    def metrics(params, x, y):
        loss, logits = loss_and_logits(model, params, x, y, None, False)
        return batch_metrics(logits, y, loss)

    def evaluate(params, xs, ys):
        def body(acc, xy):
            m = metrics(params, *xy)  # a mean counts once per image
            return {k: acc[k] + (v * xy[1].shape[0] if is_mean(v) else v) for k, v in m.items()}, None

        return jax.lax.scan(body, zeros_of(metrics, params, xs[0], ys[0]), (xs, ys))[0]

    return evaluate
