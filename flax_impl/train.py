"""python -m flax_impl.train: the tutorial's training in JAX/Flax, same flags and outputs as torch_ref.

  python -m flax_impl.train --model both --epochs 100 --data PATH --out runs/flax
"""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiment import cli
from experiment.cli import train_parser
from experiment.entry import run_train
from experiment.errors import UserError, exit_on_user_error
from experiment.loop import finite_or_raise
from flax_impl.checkpoint import load_train_state, save_checkpoint, save_train_state
from flax_impl.device import DEVICES, describe, fetch, make_mesh, pick_devices, put, sharding, start_distributed
from flax_impl.models import INITS, build_model
from flax_impl.ops import IMPLS
from flax_impl.steps import MICRO_BATCH, init_state, make_epoch_fn, make_eval_fn, make_optimizer, make_train_step

PROG = "flax_impl.train"
EVAL_BATCH = 1000
FUSES = ("scan", "step")


def add_flax_flags(p):
    p.add_argument("--init", choices=INITS, default="torch",
                   help="torch: PyTorch's default init (comparable curves); flax: Flax's defaults")
    p.add_argument("--impl", choices=IMPLS, default="matmul",
                   help="conv/pool formulation: matmul (im2col, fast on CPU) or xla (lax.conv)")
    p.add_argument("--fuse", choices=FUSES, default="scan",
                   help="scan: each epoch is one compiled lax.scan; step: one jit call per batch")
    p.add_argument("--data-parallel", action="store_true",
                   help="split each batch over all devices of --device (default: devices split the seeds)")
    p.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                   help="several hosts: process 0's address for jax.distributed.initialize")
    p.add_argument("--num-processes", type=int, default=None, help="several hosts: how many processes")
    p.add_argument("--process-id", type=int, default=None, help="several hosts: this process's id")


def over_seeds(f, n_seeds, in_axes):
    """jax.vmap(f) over a leading seed axis. With one seed the axis is squeezed away instead:
    XLA's CPU batched matmuls are ~1.5x slower than plain ones, even for a batch of one."""
    if n_seeds > 1:
        return jax.vmap(f, in_axes=in_axes)
    tm = jax.tree_util.tree_map

    def one(*args):
        args = [tm(lambda a: a[0], x) if ax == 0 else x for x, ax in zip(args, in_axes)]
        return tm(lambda a: a[None], f(*args))

    return one


def batched(x, size):
    """Split the leading axis into full batches of `size` and the remainder."""
    nb = len(x) // size
    return x[: nb * size].reshape(nb, size, *x.shape[1:]), x[nb * size:]


class FlaxTrainer:
    """All seeds of one model in one compiled program: the state has a leading seed axis and every
    function maps over it (jax.vmap; squeezed away for a single seed, see over_seeds). The seed
    axis is sharded over the devices' "seeds" mesh axis and, with --data-parallel, each batch over
    the "data" axis (flax_impl.device). The Trainer interface is described in experiment.loop."""

    ckpt_ext = ".msgpack"

    def __init__(self, model_name, splits, args, seeds):
        start_distributed(args)
        devices = pick_devices(args.device)
        self.name, self.config, self.seeds = model_name, vars(args), list(seeds)
        n = len(self.seeds)
        self.mesh = make_mesh(devices, n, args.data_parallel)
        n_data_dev = self.mesh.shape["data"]
        if args.batch_size % n_data_dev:
            raise UserError(f"--data-parallel: --batch-size {args.batch_size} does not split over {n_data_dev} devices")
        self.device = describe(devices[0]) + (f" x{self.mesh.devices.size}" if self.mesh.devices.size > 1 else "")
        self.versions = {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}
        self.batch_size, self.fuse = args.batch_size, args.fuse
        self.model = build_model(model_name, args.dropout_rate, args.init, args.impl)
        self.tx = tx = make_optimizer(args.lr)
        self.lanes_sh = sharding(self.mesh, "seeds")          # state, keys: leading seed axis
        self.batch_sh = sharding(self.mesh, "seeds", None, "data")  # batch indices [seed, step, batch]
        replicated = sharding(self.mesh)
        rep = lambda a: put(a, replicated)  # noqa: E731
        init = jax.jit(over_seeds(lambda s: init_state(self.model, tx, s), n, (0,)), out_shardings=self.lanes_sh)
        self.state = init(put(np.array(self.seeds), self.lanes_sh))
        self.train_x, self.train_y = rep(splits.train_x), rep(splits.train_y.astype(np.int32))
        # The validation set goes to the device once, in eval batches.
        self.val = [(rep(x), rep(y.astype(np.int32))) for x, y in eval_batches(splits.val_x, splits.val_y)]
        self.n_val = len(splits.val_x)
        # Chunking a batch into micro-batches (a CPU cache trick) would fight the batch sharding.
        step = make_train_step(self.model, tx, micro_batch=None if args.data_parallel else MICRO_BATCH)
        # Per-seed batches are gathered inside the compiled code: data stays put, indices travel.
        gather_step = lambda st, x, y, idx: step(st, x[idx], y[idx])  # noqa: E731
        self.step = jax.jit(over_seeds(gather_step, n, (0, None, None, 0)), donate_argnums=0)
        self.epoch_fn = jax.jit(over_seeds(make_epoch_fn(step), n, (0, None, None, 0)), donate_argnums=0)
        self.eval_fn = jax.jit(over_seeds(make_eval_fn(self.model), n, (0, None, None)))

    def train_epoch(self, epoch, orders):
        """Full batches in one compiled scan (or one jit call each); the last partial batch, if
        any, as one more step of its own size, as PyTorch's DataLoader(drop_last=False) does."""
        orders = orders.astype(np.int32)
        nb = orders.shape[1] // self.batch_size
        full = put(orders[:, : nb * self.batch_size].reshape(len(orders), nb, self.batch_size), self.batch_sh)
        rest = orders[:, nb * self.batch_size:]
        if self.fuse == "scan":
            self.state, losses, corrects = self.epoch_fn(self.state, self.train_x, self.train_y, full)
        else:
            outs = []
            for b in range(nb):
                self.state, out = self.step(self.state, self.train_x, self.train_y, full[:, b])
                outs.append(out)
            losses, corrects = (jnp.stack(o, axis=1) for o in zip(*outs))
        losses, corrects = fetch((losses, corrects))
        finite_or_raise(losses)
        loss_sum = losses.astype(np.float64).sum(axis=1) * self.batch_size  # float32 could overflow
        correct = corrects.sum(axis=1)
        if rest.shape[1]:
            self.state, (loss, c) = self.step(self.state, self.train_x, self.train_y, put(rest, self.lanes_sh))
            loss, c = fetch((loss, c))
            finite_or_raise(loss[:, None], first_step=nb)
            loss_sum = loss_sum + loss.astype(np.float64) * rest.shape[1]
            correct = correct + c
        n = orders.shape[1]
        return loss_sum / n, correct / n

    def validate(self):
        return self._evaluate_batches(self.val, self.n_val)

    def evaluate(self, x, y):
        return self._evaluate_batches(eval_batches(x, y.astype(np.int32)), len(x))

    def _evaluate_batches(self, batches, n):
        loss_sum, correct = 0.0, 0
        for xs, ys in batches:
            batch_loss, batch_correct = fetch(self.eval_fn(self.state["params"], xs, ys))
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        return loss_sum / n, correct / n

    def lane_state(self, lane):
        return fetch(jax.tree_util.tree_map(lambda a: a[lane], self.state))

    def save(self, lane, path, **meta):
        config = dict(self.config, seed=self.seeds[lane])
        save_checkpoint(path, self.name, self.lane_state(lane), config, **meta)

    def save_train_state(self, path, epoch, histories):
        save_train_state(path, self.name, self.seeds, epoch, fetch(self.state), histories)

    def load_train_state(self, path):
        """Params, optimiser state, step and run key of every seed, bit for bit, laid out on the
        devices as before: a resumed run computes exactly what the uninterrupted one would have."""
        epoch, state, histories = load_train_state(path, self.name, self.seeds, fetch(self.state))
        self.state = jax.tree_util.tree_map(lambda a, old: put(a, old.sharding), state, self.state)
        return epoch, histories


def eval_batches(x, y):
    """[(x[nb, B, ...], y[nb, B])]: the full eval batches, then the remainder as a batch of one."""
    (xf, xr), (yf, yr) = batched(x, EVAL_BATCH), batched(y, EVAL_BATCH)
    parts = [(xf, yf)] if len(xf) else []
    return parts + ([(xr[None], yr[None])] if len(xr) else [])


def default_args(**overrides):
    """The command line's defaults as an args object, for code that builds a trainer itself."""
    p = train_parser(PROG, "flax", DEVICES)
    add_flax_flags(p)
    return cli.default_args(p, **overrides)


@exit_on_user_error(PROG)
def main(argv=None):
    return run_train(PROG, "flax", DEVICES, FlaxTrainer, argv, add_flags=add_flax_flags, process_folder=process_folder)


def process_folder(args):
    """Several hosts: process 0 writes OUT itself, process i its own copy in OUT/process_<i>
    (what --resume reads there), so processes never write the same file."""
    return f"process_{args.process_id}" if args.process_id else None


if __name__ == "__main__":
    main()
