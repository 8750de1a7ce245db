"""FlaxTrainer: a set of lanes trained as one compiled program (experiment.trainer.Trainer). It only
computes: its files are the records' (experiment.records), written with flax_impl.checkpoint."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from experiment.errors import UserError
from experiment.metrics import finite_or_raise, image_sum, prefixed
from experiment.variants import VARIANTS
from flax_impl.checkpoint import shape_mismatch
from flax_impl.compilation import STATS, enable_cache
from flax_impl.device import describe, fetch, make_mesh, pick_devices, put, start_distributed
from flax_impl.models import Network
from flax_impl.steps import DeviceData, LaneProgram, make_optimizer

# --precision as JAX names it: float32 dots and convolutions at HIGHEST (full float32) or HIGH (TF32).
JAX_PRECISION = {"highest": "highest", "tf32": "tensorfloat32"}


def lane_mesh(config, n_lanes):
    """The devices of --device as a (lanes, data) mesh, or UserError."""
    o = config.options
    start_distributed(o.coordinator, o.num_processes, o.process_id)
    mesh = make_mesh(pick_devices(config.device), n_lanes, o.data_parallel)
    n_data = mesh.shape["data"]
    if config.batch_size % n_data:
        raise UserError(f"--data-parallel: --batch-size {config.batch_size} does not split over {n_data} devices")
    return mesh


def epoch_totals(metrics, batch_size):
    """Per-step metrics [lanes, steps] of batches of batch_size images -> per-lane sums over the
    images (experiment.metrics.image_sum), summed in float64: float32 could overflow."""
    return {k: image_sum(k, v.astype(np.float64).sum(axis=1), batch_size) for k, v in metrics.items()}


class HostCopy:
    """A lane-stacked state on the devices, copied to the host once, when first needed (by the
    writer, possibly on its own thread). The copy starts at once, without waiting for it."""

    def __init__(self, tree):
        self.tree, self._host = tree, None
        for leaf in jax.tree_util.tree_leaves(tree):
            if leaf.is_fully_addressable:
                leaf.copy_to_host_async()

    def host(self):
        if self._host is None:
            self._host = fetch(self.tree)
        return self._host

    def lane(self, i):
        return jax.tree_util.tree_map(lambda a: a[i], self.host())

    def params(self, i):
        """Lane i's weights, as its checkpoint holds them."""
        return self.lane(i)["params"]

    def state(self):
        """Every lane's whole state, as the train state holds it."""
        return self.host()


class FlaxEpoch:
    """An epoch whose training and validation are queued on the devices (experiment.trainer.EpochRun)."""

    def __init__(self, trainer, steps, last, evaluated, state):
        """evaluated: {split: its evaluation chunks, still on the devices} (val, and train_eval)."""
        self.trainer, self.steps, self.last, self.evaluated = trainer, steps, last, evaluated
        self.snapshot = HostCopy(state)
        for leaf in jax.tree_util.tree_leaves((steps, last, evaluated)):
            leaf.copy_to_host_async()

    def wait(self):
        """Wait for the epoch's training and evaluations on the devices (and nothing else)."""
        jax.block_until_ready((self.steps, self.last, self.evaluated))

    def metrics(self):
        t = self.trainer
        return {**t.train_metrics(self.steps, self.last),
                **{k: v for split, chunks in self.evaluated.items() for k, v in t.eval_metrics(chunks, split).items()}}


def lanes_network(lanes, options):
    """The network all lanes train: DropoutModel when any lane has dropout (a BaseLine lane is one of
    rate 0, bit for bit), else BaseLineModel, as a lane alone would train."""
    dropout = any(VARIANTS[lane.model].has_dropout for lane in lanes)
    return Network("dropout" if dropout else "baseline", options.init, options.impl)


class FlaxTrainer:
    """All lanes in one compiled program: the state has a leading lane axis and every function
    maps over it (flax_impl.steps), with the network lanes_network gives and each lane's dropout rate
    as an input. Pipelined: start_epoch queues
    the work and returns; the loop reads the metrics later."""

    pipelined = True

    def __init__(self, config, lanes, splits):
        """The devices (and JAX's compilation cache), the model and optimizer, the compiled program,
        every lane's initial state, and the data on the devices."""
        self.config, self.lanes, self.options = config, list(lanes), config.options
        enable_cache(not self.options.no_compile_cache)
        self.compile_start = STATS.snapshot()
        self.mesh = lane_mesh(config, len(self.lanes))
        n_dev = self.mesh.devices.size
        self.device = describe(self.mesh.devices.flat[0]) + (f" x{n_dev}" if n_dev > 1 else "")
        self.versions = {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}
        self.batch_size, self.fuse = config.batch_size, self.options.fuse
        self.precision = JAX_PRECISION[config.precision]
        self.network = lanes_network(self.lanes, self.options)
        self.tx = make_optimizer(config.lr)
        p = self.program = LaneProgram(self.network, self.tx, self.mesh, len(self.lanes), self.options)
        seeds = put(np.array([lane.seed for lane in self.lanes]), p.lanes_sh)
        self.rates = put(np.array([lane.dropout_rate for lane in self.lanes], np.float32), p.lanes_sh)
        with jax.default_matmul_precision(self.precision):
            self.state = p.init(seeds)
        self.data = DeviceData(splits, p, config.eval_train)
        self.n_train = self.data.n_train

    def compile_stats(self):
        return STATS.since(self.compile_start)

    def start_epoch(self, epoch, batches):
        steps, last = self.dispatch_train(batches)
        # A donated state is consumed by the next epoch's first step: the snapshot is a device copy.
        kept = jax.tree_util.tree_map(jnp.copy, self.state) if self.options.donate else self.state
        evaluated = {split: self.dispatch_evaluate(batches) for split, (batches, _) in self.data.evaluated.items()}
        return FlaxEpoch(self, steps, last, evaluated, kept)

    def train_epoch(self, epoch, batches):
        """One epoch's training, waited for: {'train_loss': [lanes], 'train_acc': [lanes]}."""
        return self.train_metrics(*self.dispatch_train(batches))

    def validate(self):
        return self.eval_metrics(self.dispatch_validate(), "val")

    def dispatch_train(self, batches):
        """Queue the full batches as one compiled scan (or one jit call each) and the last partial
        batch, if any, as one more step of its own size, as PyTorch's DataLoader(drop_last=False)
        does; returns their per-step metrics, still on the devices."""
        with jax.default_matmul_precision(self.precision):  # part of each program's compile key
            return self._dispatch_train(batches)

    def _dispatch_train(self, batches):
        p, d = self.program, self.data
        full, rest = put(batches.full, p.batch_sh), batches.rest
        if self.fuse == "scan":
            self.state, steps = p.epoch(self.state, self.rates, d.train_x, d.train_y, full)
        else:
            outs = []
            for b in range(full.shape[1]):
                self.state, out = p.step(self.state, self.rates, d.train_x, d.train_y, full[:, b])
                outs.append(out)
            steps = {k: jnp.stack([o[k] for o in outs], axis=1) for k in outs[0]}
        last = None
        if rest.shape[1]:
            self.state, last = p.step(self.state, self.rates, d.train_x, d.train_y, put(rest, p.lanes_sh))
        return steps, last

    def dispatch_validate(self):
        return self.dispatch_evaluate(self.data.evaluated["val"][0])

    def dispatch_evaluate(self, batches):
        """Queue the evaluation (eval mode) of every lane on evaluation batches; its metric sums, on the devices."""
        with jax.default_matmul_precision(self.precision):
            return [self.program.evaluate(self.state["params"], xs, ys) for xs, ys in batches]

    def train_metrics(self, steps, last):
        """Per-step metrics -> per-lane averages over the epoch's images; Diverged on a NaN/Inf loss."""
        steps = fetch(steps)
        finite_or_raise(steps["loss"])
        totals = epoch_totals(steps, self.batch_size)
        if last is not None:
            last = {k: v[:, None] for k, v in fetch(last).items()}
            finite_or_raise(last["loss"], first_step=steps["loss"].shape[1])
            rest = self.data.n_train - steps["loss"].shape[1] * self.batch_size
            for k, v in epoch_totals(last, rest).items():
                totals[k] = totals[k] + v
        return prefixed("train", totals, self.data.n_train)

    def eval_metrics(self, chunks, split):
        """An evaluation's metric sums -> per-lane averages, named for `split` (val, train_eval)."""
        totals = {}
        for chunk in chunks:
            for k, v in fetch(chunk).items():
                totals[k] = totals.get(k, 0) + v
        return prefixed(split, totals, self.data.evaluated[split][1])

    def restore(self, tree):
        """Params, optimiser state, step and run key of every lane from a train state's tree, bit for
        bit, laid out on the devices as before: a resumed run computes exactly what the
        uninterrupted one would have."""
        template = fetch(self.state)
        # Only the template's keys are read: lanes of several rates kept theirs in the state ("rate") until
        # the rate became an input of the program, and such a file resumes (tests/test_lanes.py).
        state = serialization.from_state_dict(template, tree)
        wrong = shape_mismatch(state, template)
        if wrong:
            raise ValueError(wrong)
        self.state = jax.tree_util.tree_map(lambda a, old: put(a, old.sharding), state, self.state)
