"""FlaxTrainer: a set of lanes trained as one compiled program (experiment.trainer.Trainer)."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiment.batching import lane_batches
from experiment.errors import UserError
from experiment.loop import finite_or_raise
from experiment.metrics import prefixed
from experiment.trainer import DoneEpoch
from flax_impl.checkpoint import load_train_state, save_checkpoint, save_train_state
from flax_impl.device import describe, fetch, make_mesh, pick_devices, put, start_distributed
from flax_impl.models import build_model
from flax_impl.program import DeviceData, LaneProgram
from flax_impl.steps import make_optimizer


def lane_mesh(config, n_lanes):
    """The devices of --device as a (lanes, data) mesh, or UserError."""
    x = config.extras
    start_distributed(x["coordinator"], x["num_processes"], x["process_id"])
    mesh = make_mesh(pick_devices(config.device), n_lanes, x["data_parallel"])
    n_data = mesh.shape["data"]
    if config.batch_size % n_data:
        raise UserError(f"--data-parallel: --batch-size {config.batch_size} does not split over {n_data} devices")
    return mesh


def epoch_totals(metrics, batch_size):
    """Per-step metrics [lanes, steps] of full batches -> per-lane sums over the images (means
    weighted by the batch size, summed in float64: float32 could overflow; counts summed)."""
    return {k: v.astype(np.float64).sum(axis=1) * batch_size if np.issubdtype(v.dtype, np.floating)
            else v.sum(axis=1) for k, v in metrics.items()}


class FlaxTrainer:
    """All lanes in one compiled program: the state has a leading lane axis and every function
    maps over it (flax_impl.program)."""

    ckpt_ext = ".msgpack"
    pipelined = False

    def __init__(self, config, lanes, splits):
        self.config, self.lanes = config, list(lanes)
        models = {(lane.model, lane.dropout_rate) for lane in self.lanes}
        if len(models) != 1:
            raise ValueError(f"one FlaxTrainer trains one model; got {sorted(models)}")
        (name, rate), = models
        x = config.extras
        self.mesh = lane_mesh(config, len(self.lanes))
        n_dev = self.mesh.devices.size
        self.device = describe(self.mesh.devices.flat[0]) + (f" x{n_dev}" if n_dev > 1 else "")
        self.versions = {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}
        self.batch_size, self.fuse = config.batch_size, x["fuse"]
        self.model = build_model(name, rate, x["init"], x["impl"])
        self.tx = make_optimizer(config.lr)
        self.program = LaneProgram(self.model, self.tx, self.mesh, len(self.lanes), x["data_parallel"])
        self.state = self.program.init(put(np.array([lane.seed for lane in self.lanes]), self.program.lanes_sh))
        self.data = DeviceData(splits, self.program)

    def start_epoch(self, epoch, orders):
        metrics = {**self.train_epoch(epoch, orders), **self.validate()}
        return DoneEpoch(metrics, self.state)

    def train_epoch(self, epoch, orders):
        """Full batches in one compiled scan (or one jit call each); the last partial batch, if
        any, as one more step of its own size, as PyTorch's DataLoader(drop_last=False) does."""
        p, d = self.program, self.data
        full, rest = lane_batches(orders, self.batch_size)
        full = put(full, p.batch_sh)
        if self.fuse == "scan":
            self.state, steps = p.epoch(self.state, d.train_x, d.train_y, full)
        else:
            outs = []
            for b in range(full.shape[1]):
                self.state, out = p.step(self.state, d.train_x, d.train_y, full[:, b])
                outs.append(out)
            steps = {k: jnp.stack([o[k] for o in outs], axis=1) for k in outs[0]}
        steps = fetch(steps)
        finite_or_raise(steps["loss"])
        totals = epoch_totals(steps, self.batch_size)
        if rest.shape[1]:
            self.state, last = p.step(self.state, d.train_x, d.train_y, put(rest, p.lanes_sh))
            last = fetch(last)
            finite_or_raise(last["loss"][:, None], first_step=full.shape[1])
            for k, v in epoch_totals({k: v[:, None] for k, v in last.items()}, rest.shape[1]).items():
                totals[k] = totals[k] + v
        return prefixed("train", totals, orders.shape[1])

    def validate(self):
        totals = {}
        for xs, ys in self.data.val:
            for k, v in fetch(self.program.evaluate(self.state["params"], xs, ys)).items():
                totals[k] = totals.get(k, 0) + v
        return prefixed("val", totals, self.data.n_val)

    def save(self, snapshot, lane, path, meta):
        state = fetch(jax.tree_util.tree_map(lambda a: a[lane], snapshot))  # slice on the device, fetch one lane
        config = self.config.recorded(self.lanes[lane].model, self.lanes[lane].seed)
        save_checkpoint(path, self.lanes[lane].model, state, config, **meta)

    def save_train_state(self, snapshot, path, epoch, histories):
        save_train_state(path, self.lanes, epoch, fetch(snapshot), histories)

    def load_train_state(self, path):
        """Params, optimiser state, step and run key of every lane, bit for bit, laid out on the
        devices as before: a resumed run computes exactly what the uninterrupted one would have."""
        epoch, state, histories = load_train_state(path, self.lanes, fetch(self.state))
        self.state = jax.tree_util.tree_map(lambda a, old: put(a, old.sharding), state, self.state)
        return epoch, histories
