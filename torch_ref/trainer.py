"""The tutorial's training in PyTorch eager: each lane (model, dropout rate, seed) in turn, one batch
at a time, with the loss read back every step as the tutorial's Train_Eval does; its optimizer
(make_adam) and train step (TorchTrainer._train_lane). The faster engines (torch_ref.engines) build
on its lanes and snapshots. Trainers only compute: their files are the records' (experiment.records),
written with torch_ref.checkpoint."""
import copy
import math
import sys
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from experiment.errors import Diverged, UserError
from experiment.metrics import TRAIN_EVAL, check_names, image_average, image_sum, prefixed
from experiment.split import EVAL_BATCH, batch_slices
from experiment.stop import Abandoned
from experiment.stop import current as current_stop
from experiment.trainer import DoneEpoch
from torch_ref.models import build_model
from torch_ref.precision import set_precision


def batch_metrics(logits, y, loss):
    """This framework's per-batch metrics (experiment.metrics): a float is a batch mean, an int a count."""
    return {"loss": loss, "acc": (logits.argmax(1) == y).sum()}


def add_batch(totals, values, n):
    """Add one batch's metrics over its n images, as host numbers, to the epoch's totals (sums over
    the images: experiment.metrics.image_sum)."""
    for k, v in values.items():
        totals[k] = totals.get(k, 0) + image_sum(k, v, n)


def eval_metrics(logits, y, split="val"):
    """One lane's metrics on an evaluation set (val; train_eval: the training set in eval mode), the
    whole set as one batch, as tensors (per-image averages)."""
    m = batch_metrics(logits, y, F.cross_entropy(logits, y))
    return {f"{split}_{k}": image_average(k, v, len(y)) for k, v in m.items()}


# Adam with PyTorch's defaults (betas (0.9, 0.999), eps 1e-8 outside the sqrt), as the tutorial uses it.
# The engines differ only in how its update runs: the tutorial's default kernel; one fused kernel
# (CUDA) or one foreach sweep (CPU); fused with its step count on the device, as a CUDA graph needs.
ADAM_KERNELS = {"tutorial": lambda dev: {},
                "fast": lambda dev: {"fused": True} if dev.type == "cuda" else {"foreach": True},
                "graph": lambda dev: {"fused": True, "capturable": True}}


def make_adam(params, lr, device, kernel="tutorial"):
    return torch.optim.Adam(params, lr=lr, **ADAM_KERNELS[kernel](device))


class LaneStates(list):
    """A trainer's snapshot: per lane {"model", "optimizer", "rng", "cuda_rng"} (TorchLane.state())."""

    def params(self, lane):
        """Lane `lane`'s weights, as its checkpoint holds them (the bare state_dict)."""
        return self[lane]["model"]

    def state(self):
        """Every lane's state, as the train state holds it."""
        return list(self)


def to_nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))


def pick_device(name):
    """--device (experiment.frameworks.DEVICES; 'cuda' = 'gpu') as a torch.device, or UserError."""
    if name == "tpu":
        raise UserError("--device tpu: torch_ref runs on cpu or gpu (CUDA); train on a TPU with flax_impl.train")
    if name == "auto":
        name = "gpu" if torch.cuda.is_available() else "cpu"
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is visible to PyTorch")
    return torch.device("cuda" if name in ("gpu", "cuda") else "cpu")


def describe(dev):
    return str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev)


def set_deterministic(on):
    """Deterministic algorithms (the tutorial engine) or the fastest ones (the others). A process-wide
    setting, so every trainer sets it, either way."""
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = not on


def torch_versions():
    """history.json's "versions" of a PyTorch run: the library, and whether deterministic
    algorithms are on, as PyTorch reports it."""
    return {"torch": torch.__version__, "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}


class RngStreams:
    """The default generators' states (CPU, and CUDA on a GPU) a stream of dropout masks continues
    from: a lane's own in the tutorial engine, so lanes trained together equal lanes trained alone."""

    def __init__(self, device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def active(self):
        """Draw from these states inside the block and keep where the block left them."""
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:  # dropout on a GPU draws from the CUDA generator
            torch.cuda.set_rng_state(self.cuda, self.device)
        yield
        self.cpu = torch.get_rng_state()
        if self.cuda is not None:
            self.cuda = torch.cuda.get_rng_state(self.device)

    def saved(self):
        return {"rng": self.cpu.clone(), "cuda_rng": None if self.cuda is None else self.cuda.clone()}

    def load(self, saved):
        self.cpu = saved["rng"]
        if self.cuda is not None and saved.get("cuda_rng") is not None:
            self.cuda = saved["cuda_rng"]


class TorchLane:
    """One lane: its model, Adam optimiser and private RNG state. `dtype`: the model's (float64 only
    in tests)."""

    def __init__(self, lane, config, device, make_optimizer, dtype=torch.float32):
        torch.manual_seed(lane.seed)
        self.model = build_model(lane.model, lane.dropout_rate).to(device=device, dtype=dtype)
        # torch.compile wraps the module for training only; checkpoints and eval use the module itself.
        o = config.options
        self.net = torch.compile(self.model, mode=o.compile_mode) if o.compile else self.model
        self.opt = make_optimizer(self.model.parameters())
        self.rng = RngStreams(device)

    def state(self):
        """A copy of everything a checkpoint or train state holds, unaffected by later steps."""
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.opt.state_dict()), **self.rng.saved()}

    def load(self, saved):
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        self.rng.load(saved)


class LaneTrainer:
    """What every PyTorch engine shares (experiment.trainer.Trainer): an epoch trains, then
    validates; a snapshot holds per lane what TorchLane.state() holds, so checkpoints and train
    states are the same files whichever engine wrote them."""

    pipelined = False
    deterministic = True
    adam = "tutorial"  # its Adam kernel (ADAM_KERNELS)

    def __init__(self, config, lanes, splits, dtype):
        """The device with this engine's precision and determinism modes, and the training images
        on it in `dtype`: float32, or float64 for tests that compare engines step by step."""
        self.dev = pick_device(config.device)
        set_precision(config.precision)
        set_deterministic(self.deterministic)
        self.config, self.lanes = config, list(lanes)
        self.batch_size, self.progress = config.batch_size, not config.no_progress
        self.train_x = to_nchw(splits.train_x).to(self.dev, dtype)
        self.train_y = torch.from_numpy(splits.train_y).to(self.dev)
        self.n_train = len(splits.train_x)
        self.device, self.versions = describe(self.dev), torch_versions()

    def compile_stats(self):
        return None

    def make_optimizer(self, params):
        return make_adam(params, self.config.lr, self.dev, self.adam)

    def start_epoch(self, epoch, batches):
        metrics = {**self.train_epoch(epoch, batches), **self.validate()}
        if self.config.eval_train:
            metrics.update(self.evaluate(*self.train_set, TRAIN_EVAL))
        return DoneEpoch(metrics, self.snapshot())

    def validate(self):
        return self.evaluate(*self.val_set, "val")

    def progress_bar(self, name, epoch, slices):
        """The epoch's batches (index ranges) behind a progress bar; Abandoned between two batches
        once a stop is requested (every engine iterates its batches here)."""
        # No bar where no one watches it (output redirected to a log file): the epoch lines say it all.
        return tqdm(self.until_stopped(slices), total=len(slices), desc=f"{name} epoch {epoch}",
                    leave=False, disable=not self.progress or not sys.stderr.isatty(), mininterval=0.5)

    def until_stopped(self, slices):
        stop = current_stop()  # the train command's, or an inert one
        for s in slices:
            if stop.requested:
                raise Abandoned
            yield s

    def restore(self, states):
        """Models, optimisers and RNG states as a train state holds them (per lane). With the batch
        order a function of (seed, epoch), that is all a resumed run needs to continue exactly."""
        self.load_states(states)


class TorchTrainer(LaneTrainer):
    """The tutorial engine: lanes one after the other each epoch."""

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        super().__init__(config, lanes, splits, dtype)
        self.torch_lanes = [TorchLane(lane, config, self.dev, self.make_optimizer, dtype) for lane in self.lanes]
        self.loss_fn = nn.CrossEntropyLoss()
        # What evaluate() reads: host NHWC images and labels (the tutorial engine's predict uploads them).
        self.val_set, self.train_set = (splits.val_x, splits.val_y), (splits.train_x, splits.train_y)

    def snapshot(self):
        return LaneStates(lane.state() for lane in self.torch_lanes)

    def load_states(self, states):
        for lane, saved in zip(self.torch_lanes, states):
            lane.load(saved)

    def train_epoch(self, epoch, batches):
        per_lane = []
        for i, (lane, order) in enumerate(zip(self.torch_lanes, batches.orders)):
            with lane.rng.active():
                per_lane.append(self._train_lane(i, epoch, order, batches.slices))
        return {k: np.array([m[k] for m in per_lane]) for k in per_lane[0]}

    def _train_lane(self, lane_index, epoch, order, slices):
        """The tutorial's Train step: running averages over the epoch, dropout active."""
        lane = self.torch_lanes[lane_index]
        model, opt = lane.model, lane.opt
        model.train()
        order = torch.from_numpy(order).to(self.dev)
        totals, seen = {}, 0
        bar = self.progress_bar(self.lanes[lane_index].folder, epoch, slices)
        for step, s in enumerate(bar, 1):
            idx = order[s]
            x, y = self.train_x[idx], self.train_y[idx]
            opt.zero_grad()
            out = lane.net(x)
            loss = self.loss_fn(out, y)
            values = {k: v.item() for k, v in batch_metrics(out, y, loss).items()}
            if not math.isfinite(values["loss"]):
                raise Diverged(lane_index, step, values["loss"])
            loss.backward()
            opt.step()
            add_batch(totals, values, len(y))
            seen += len(y)
            bar.set_postfix(loss=f"{totals['loss'] / seen:.4f}", acc=f"{100 * totals['acc'] / seen:.1f}%",
                            refresh=False)
        return prefixed("train", totals, seen)

    @torch.no_grad()
    def evaluate(self, x_nhwc, labels, split):
        """Every lane's metrics on a set in eval mode, named for `split`."""
        y = torch.from_numpy(labels)
        per_lane = [{k: v.item() for k, v in eval_metrics(predict(lane.model, x_nhwc, self.dev), y, split).items()}
                    for lane in self.torch_lanes]
        return check_names({k: np.array([m[k] for m in per_lane]) for k in per_lane[0]}, split)


@torch.no_grad()
def predict(model, x_nhwc, device):
    """Eval-mode logits (on the CPU) for NHWC float32 images, in the model's float type."""
    model.eval()
    dtype = next(model.parameters()).dtype
    outs = [model(to_nchw(x_nhwc[s]).to(device, dtype)).cpu() for s in batch_slices(len(x_nhwc), EVAL_BATCH)]
    return torch.cat(outs)
