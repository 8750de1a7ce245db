"""The tutorial's training in PyTorch eager: each lane (model, dropout rate, seed) in turn, one batch
at a time, with the loss read back every step as the tutorial's Train_Eval does."""
import copy
import math

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from experiment.batching import EVAL_BATCH, batch_slices
from experiment.checkpoints import checkpoint_meta
from experiment.errors import Diverged, UserError
from experiment.metrics import check_names, prefixed
from experiment.trainer import DoneEpoch
from torch_ref.checkpoint import load_train_state, save_checkpoint, save_train_state
from torch_ref.models import build_model
from torch_ref.precision import set_precision


def batch_metrics(logits, y, loss):
    """This framework's per-batch metrics (experiment.metrics): a float is a batch mean, an int a count."""
    return {"loss": loss, "acc": (logits.argmax(1) == y).sum()}


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


class TorchLane:
    """One lane: its model, Adam optimiser and private RNG state (so lanes trained together equal
    lanes trained alone)."""

    def __init__(self, lane, config, device):
        torch.manual_seed(lane.seed)
        self.model = build_model(lane.model, lane.dropout_rate).to(device)
        # torch.compile wraps the module for training only; checkpoints and eval use the module itself.
        self.net = torch.compile(self.model) if config.extras.get("compile") else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.rng_state = torch.get_rng_state()
        self.cuda_rng_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def state(self):
        """A copy of everything a checkpoint or train state holds, unaffected by later steps."""
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.opt.state_dict()), "rng": self.rng_state.clone(),
                "cuda_rng": None if self.cuda_rng_state is None else self.cuda_rng_state.clone()}


class TorchTrainer:
    """The tutorial engine: lanes one after the other each epoch (experiment.trainer.Trainer)."""

    ckpt_ext = ".pt"
    pipelined = False

    def __init__(self, config, lanes, splits):
        self.dev = pick_device(config.device)
        set_precision(config.precision)
        torch.use_deterministic_algorithms(True)
        self.config, self.lanes = config, list(lanes)
        self.torch_lanes = [TorchLane(lane, config, self.dev) for lane in self.lanes]
        self.loss_fn = nn.CrossEntropyLoss()
        self.batch_size, self.progress = config.batch_size, not config.no_progress
        self.train_x, self.train_y = to_nchw(splits.train_x).to(self.dev), torch.from_numpy(splits.train_y).to(self.dev)
        self.val_x, self.val_y = splits.val_x, splits.val_y
        self.device = describe(self.dev)
        self.versions = {"torch": torch.__version__}

    def compile_stats(self):
        return None

    def start_epoch(self, epoch, orders):
        metrics = {**self.train_epoch(epoch, orders), **self.validate()}
        return DoneEpoch(metrics, [lane.state() for lane in self.torch_lanes])

    def train_epoch(self, epoch, orders):
        per_lane = []
        for i, (lane, order) in enumerate(zip(self.torch_lanes, orders)):
            torch.set_rng_state(lane.rng_state)
            if lane.cuda_rng_state is not None:  # dropout on a GPU draws from the CUDA generator
                torch.cuda.set_rng_state(lane.cuda_rng_state, self.dev)
            per_lane.append(self._train_lane(i, epoch, order))
            lane.rng_state = torch.get_rng_state()
            if lane.cuda_rng_state is not None:
                lane.cuda_rng_state = torch.cuda.get_rng_state(self.dev)
        return {k: np.array([m[k] for m in per_lane]) for k in per_lane[0]}

    def _train_lane(self, lane_index, epoch, order):
        """The tutorial's Train step: running averages over the epoch, dropout active."""
        lane = self.torch_lanes[lane_index]
        model, opt = lane.model, lane.opt
        model.train()
        order = torch.from_numpy(order).to(self.dev)
        totals, seen = {}, 0
        bar = tqdm(batch_slices(len(order), self.batch_size), desc=f"{self.lanes[lane_index].group} epoch {epoch}",
                   leave=False, disable=not self.progress, mininterval=0.5)
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
            for k, v in values.items():  # a mean counts once per image, a count as it is
                totals[k] = totals.get(k, 0) + (v * len(y) if isinstance(v, float) else v)
            seen += len(y)
            bar.set_postfix(loss=f"{totals['loss'] / seen:.4f}", acc=f"{100 * totals['acc'] / seen:.1f}%",
                            refresh=False)
        return prefixed("train", totals, seen)

    @torch.no_grad()
    def validate(self):
        y = torch.from_numpy(self.val_y)
        per_lane = []
        for lane in self.torch_lanes:
            logits = predict(lane.model, self.val_x, self.dev)
            m = batch_metrics(logits, y, self.loss_fn(logits, y))  # the whole set as one batch
            per_lane.append({f"val_{k}": (v if v.is_floating_point() else v.float() / len(y)).item()
                             for k, v in m.items()})
        return check_names({k: np.array([m[k] for m in per_lane]) for k in per_lane[0]}, "val")

    def save(self, snapshot, lane, path, meta):
        x = self.lanes[lane]
        save_checkpoint(path, snapshot[lane]["model"], checkpoint_meta("torch", x, self.config.recorded(x), **meta))

    def save_train_state(self, snapshot, path, epoch, histories):
        save_train_state(path, self.lanes, epoch, snapshot, histories)

    def load_train_state(self, path):
        """Models, optimisers and RNG states as they were after the saved epoch. With the batch
        order a function of (seed, epoch), that is all a resumed run needs to continue exactly."""
        epoch, states, histories = load_train_state(path, self.lanes)
        try:
            for lane, saved in zip(self.torch_lanes, states):
                lane.model.load_state_dict(saved["model"])
                lane.opt.load_state_dict(saved["optimizer"])
                lane.rng_state = saved["rng"]
                if lane.cuda_rng_state is not None and saved.get("cuda_rng") is not None:
                    lane.cuda_rng_state = saved["cuda_rng"]
        except (RuntimeError, KeyError, ValueError) as e:
            raise UserError(f"{path} does not fit this run's lanes ({type(e).__name__})") from None
        return epoch, histories


@torch.no_grad()
def predict(model, x_nhwc, device):
    """Eval-mode logits (on the CPU) for NHWC float32 images."""
    model.eval()
    outs = [model(to_nchw(x_nhwc[s]).to(device)).cpu() for s in batch_slices(len(x_nhwc), EVAL_BATCH)]
    return torch.cat(outs)
