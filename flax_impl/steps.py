"""Pure, jit-compiled training and evaluation functions.

State is a plain dict {params, opt_state, step, key}: no hidden RNG. Each step's dropout key is
fold_in(run key, global step), so a run is a function of its seed alone. `epoch_fn` runs a whole
epoch's full batches as one compiled lax.scan over the device-resident data; `vmap` of the same
functions trains several seeds in one program.
"""
import jax
import jax.numpy as jnp
import optax


def make_optimizer(lr):
    # PyTorch Adam defaults: betas (0.9, 0.999), eps 1e-8 added outside the sqrt (optax's eps).
    return optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)


def init_state(model, tx, seed):
    """Params from `seed` (init key), run key for dropout derived from the same seed."""
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    params = model.init(init_key, jnp.zeros((1, 32, 32, 3), jnp.float32))["params"]
    return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32), "key": run_key}


def loss_and_logits(model, params, x, y, key, train):
    logits = model.apply({"params": params}, x, train=train, rngs={"dropout": key} if train else None)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits


MICRO_BATCH = 64


def make_train_step(model, tx, micro_batch=MICRO_BATCH):
    """(state, x, y) -> (state, (loss, correct)); loss is the batch mean, as CrossEntropyLoss.

    A batch that is a multiple of `micro_batch` is processed in chunks of that size whose
    gradients are averaged (the same gradient as the whole batch's, summed in another order):
    on CPU a chunk's activations stay in cache, so batch 256 trains as fast per image as 64.
    """
    grad_fn = jax.value_and_grad(lambda p, x, y, k: loss_and_logits(model, p, x, y, k, True), has_aux=True)

    def loss_grads_correct(params, x, y, key):
        (loss, logits), grads = grad_fn(params, x, y, key)
        return loss, grads, jnp.sum(jnp.argmax(logits, -1) == y)

    def chunked(params, x, y, key):
        n = x.shape[0] // micro_batch
        xs, ys = x.reshape(n, micro_batch, *x.shape[1:]), y.reshape(n, micro_batch)

        def body(acc, chunk):
            i, xc, yc = chunk
            out = loss_grads_correct(params, xc, yc, jax.random.fold_in(key, i))
            return jax.tree_util.tree_map(jnp.add, acc, out), None

        zero = (jnp.float32(0), jax.tree_util.tree_map(jnp.zeros_like, params), jnp.int32(0))
        (loss, grads, correct), _ = jax.lax.scan(body, zero, (jnp.arange(n), xs, ys))
        return loss / n, jax.tree_util.tree_map(lambda g: g / n, grads), correct

    def step(state, x, y):
        key = jax.random.fold_in(state["key"], state["step"])
        split = micro_batch and x.shape[0] > micro_batch and x.shape[0] % micro_batch == 0
        loss, grads, correct = (chunked if split else loss_grads_correct)(state["params"], x, y, key)
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        new = {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
               "step": state["step"] + 1, "key": state["key"]}
        return new, (loss, correct)

    return step


def make_epoch_fn(step):
    """(state, data_x, data_y, batch_idx[nb, B]) -> (state, losses[nb], corrects[nb]): one scan."""

    def epoch(state, data_x, data_y, batch_idx):
        def body(st, idx):
            st, (loss, correct) = step(st, data_x[idx], data_y[idx])
            return st, (loss, correct)

        state, (losses, corrects) = jax.lax.scan(body, state, batch_idx)
        return state, losses, corrects

    return epoch


def make_eval_fn(model):
    """(params, x[nb, B, ...], y[nb, B]) -> (sum of losses, correct count), deterministic."""

    def evaluate(params, xs, ys):
        def body(acc, xy):
            x, y = xy
            loss, logits = loss_and_logits(model, params, x, y, None, False)
            return (acc[0] + loss * y.shape[0], acc[1] + jnp.sum(jnp.argmax(logits, -1) == y)), None

        (loss_sum, correct), _ = jax.lax.scan(body, (jnp.float32(0), jnp.int32(0)), (xs, ys))
        return loss_sum, correct

    return evaluate
