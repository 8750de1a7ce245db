"""The compiled functions that train and evaluate a set of lanes as one program.

Every function maps over a leading lane axis (jax.vmap; squeezed away for one lane, see
over_lanes) and is laid out on a (lanes, data) mesh (flax_impl.device): the state's lane axis is
sharded over `lanes`, each batch over `data` with --data-parallel. The data sit on the devices once;
only the per-epoch batch indices travel.
"""
from dataclasses import dataclass

import jax
import numpy as np

from experiment.batching import eval_batches
from flax_impl.device import put, sharding
from flax_impl.steps import MICRO_BATCH, init_state, make_epoch_fn, make_eval_fn, make_train_step


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


@dataclass(frozen=True)
class ProgramOptions:
    """How the program runs, none of which changes what a step computes (tests/test_flax_variants.py).
    data_parallel: split each batch over the mesh's data axis; micro_batch: chunk a batch that is a
    multiple of it (0: never); scan_unroll: steps per iteration of the epoch's scan; donate: each
    step reuses the state's buffers for its result (the caller must copy a state it keeps)."""
    data_parallel: bool = False
    micro_batch: int = MICRO_BATCH
    scan_unroll: int = 1
    donate: bool = False

    @classmethod
    def of(cls, config):
        x = config.extras
        return cls(x["data_parallel"], x["micro_batch"], x["scan_unroll"], x["donate"])


class LaneProgram:
    """init(seeds, rates) -> state; epoch(state, x, y, batch_idx[lanes, nb, B]) and step(state, x, y,
    idx[lanes, B]) -> (state, per-step metrics); evaluate(params, xs, ys) -> metric sums.

    By default nothing is donated: the state an epoch started from stays readable, so the checkpoints
    of epoch N can be written from it while epoch N+1 trains (it costs one more copy of a state that
    is 0.75 MB per lane). With options.donate, epoch and step consume the state they are given."""

    def __init__(self, model, tx, mesh, n_lanes, options=ProgramOptions()):
        self.lanes_sh = sharding(mesh, "lanes")                   # state, keys: leading lane axis
        self.batch_sh = sharding(mesh, "lanes", None, "data")     # batch indices [lane, step, batch]
        self.replicated = sharding(mesh)
        n = n_lanes
        init = lambda seed, rate: init_state(model, tx, seed, rate)  # noqa: E731
        self.init = jax.jit(over_lanes(init, n, (0, 0)), out_shardings=self.lanes_sh)
        # Chunking a batch into micro-batches (a CPU cache trick) would fight the batch sharding.
        step = make_train_step(model, tx, micro_batch=None if options.data_parallel else options.micro_batch)
        # Per-lane batches are gathered inside the compiled code: data stays put, indices travel.
        gather_step = lambda st, x, y, idx: step(st, x[idx], y[idx])  # noqa: E731
        donate = (0,) if options.donate else ()
        self.step = jax.jit(over_lanes(gather_step, n, (0, None, None, 0)), donate_argnums=donate)
        self.epoch = jax.jit(over_lanes(make_epoch_fn(step, options.scan_unroll), n, (0, None, None, 0)),
                             donate_argnums=donate)
        self.evaluate = jax.jit(over_lanes(make_eval_fn(model), n, (0, None, None)))

    def replicate(self, x):
        return put(x, self.replicated)


class DeviceData:
    """The training images and the validation set, on the devices once, replicated."""

    def __init__(self, splits, program):
        rep = program.replicate
        self.train_x, self.train_y = rep(splits.train_x), rep(splits.train_y.astype(np.int32))
        self.val = [(rep(x), rep(y)) for x, y in eval_batches(splits.val_x, splits.val_y.astype(np.int32))]
        self.n_train, self.n_val = len(splits.train_x), len(splits.val_x)
