"""python -m torch_ref.train: the tutorial's training, in PyTorch eager.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
"""
import math

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from experiment import cli
from experiment.cli import train_parser
from experiment.entry import run_train
from experiment.errors import Diverged, UserError, exit_on_user_error
from experiment.split import batch_slices
from torch_ref.checkpoint import load_train_state, save_checkpoint, save_train_state
from torch_ref.models import build_model

EVAL_BATCH = 1000


def to_nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))


def pick_device(name):
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible to PyTorch")
    return torch.device(name)


class TorchLane:
    """One seed: its model, Adam optimiser and private RNG state (so seeds trained together equal
    seeds trained alone)."""

    def __init__(self, model_name, args, seed, device):
        torch.manual_seed(seed)
        self.model = build_model(model_name, args.dropout_rate).to(device)
        # torch.compile wraps the module for training only; checkpoints and eval use the module itself.
        self.net = torch.compile(self.model) if args.compile else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.rng_state = torch.get_rng_state()
        self.cuda_rng_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None


class TorchTrainer:
    """The seeds of one model, trained one after the other each epoch (see experiment.loop)."""

    ckpt_ext = ".pt"

    def __init__(self, model_name, splits, args, seeds):
        self.dev = pick_device(args.device)
        torch.use_deterministic_algorithms(True)
        self.name, self.config, self.seeds = model_name, vars(args), list(seeds)
        self.lanes = [TorchLane(model_name, args, s, self.dev) for s in self.seeds]
        self.loss_fn = nn.CrossEntropyLoss()
        self.batch_size, self.progress = args.batch_size, not args.no_progress
        self.train_x, self.train_y = to_nchw(splits.train_x).to(self.dev), torch.from_numpy(splits.train_y).to(self.dev)
        self.val_x, self.val_y = splits.val_x, splits.val_y
        self.device = str(self.dev) if self.dev.type != "cuda" else torch.cuda.get_device_name(self.dev)
        self.versions = {"torch": torch.__version__}

    def train_epoch(self, epoch, orders):
        results = []
        for i, (lane, order) in enumerate(zip(self.lanes, orders)):
            torch.set_rng_state(lane.rng_state)
            if lane.cuda_rng_state is not None:  # dropout on a GPU draws from the CUDA generator
                torch.cuda.set_rng_state(lane.cuda_rng_state, self.dev)
            results.append(self._train_lane(i, epoch, order))
            lane.rng_state = torch.get_rng_state()
            if lane.cuda_rng_state is not None:
                lane.cuda_rng_state = torch.cuda.get_rng_state(self.dev)
        return tuple(np.array(r) for r in zip(*results))

    def _train_lane(self, lane_index, epoch, order):
        """The tutorial's Train step: running loss and accuracy over the epoch, dropout active."""
        lane = self.lanes[lane_index]
        model, opt = lane.model, lane.opt
        model.train()
        order = torch.from_numpy(order).to(self.dev)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(batch_slices(len(order), self.batch_size), desc=f"{self.name} epoch {epoch}",
                   leave=False, disable=not self.progress, mininterval=0.5)
        for step, s in enumerate(bar, 1):
            idx = order[s]
            x, y = self.train_x[idx], self.train_y[idx]
            opt.zero_grad()
            out = lane.net(x)
            loss = self.loss_fn(out, y)
            value = loss.item()
            if not math.isfinite(value):
                raise Diverged(lane_index, step, value)
            loss.backward()
            opt.step()
            loss_sum += value * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.1f}%", refresh=False)
        return loss_sum / seen, correct / seen

    def validate(self):
        return self.evaluate(self.val_x, self.val_y)

    @torch.no_grad()
    def evaluate(self, x, y):
        y = torch.from_numpy(y)
        results = []
        for lane in self.lanes:
            logits = predict(lane.model, x, self.dev)
            results.append((self.loss_fn(logits, y).item(), (logits.argmax(1) == y).float().mean().item()))
        return tuple(np.array(r) for r in zip(*results))

    def save(self, lane, path, **meta):
        config = dict(self.config, seed=self.seeds[lane])
        save_checkpoint(path, self.name, self.lanes[lane].model, self.lanes[lane].opt, config, **meta)

    def save_train_state(self, path, epoch, histories):
        lanes = [{"model": lane.model.state_dict(), "optimizer": lane.opt.state_dict(), "rng": lane.rng_state,
                  "cuda_rng": lane.cuda_rng_state} for lane in self.lanes]
        save_train_state(path, self.name, self.seeds, epoch, lanes, histories)

    def load_train_state(self, path):
        """Models, optimisers and RNG states as they were after the saved epoch. With the batch
        order a function of (seed, epoch), that is all a resumed run needs to continue exactly."""
        epoch, lanes, histories = load_train_state(path, self.name, self.seeds)
        try:
            for lane, saved in zip(self.lanes, lanes):
                lane.model.load_state_dict(saved["model"])
                lane.opt.load_state_dict(saved["optimizer"])
                lane.rng_state = saved["rng"]
                if lane.cuda_rng_state is not None and saved.get("cuda_rng") is not None:
                    lane.cuda_rng_state = saved["cuda_rng"]
        except (RuntimeError, KeyError, ValueError) as e:
            raise UserError(f"{path} does not fit this run's {self.name} model ({type(e).__name__})") from None
        return epoch, histories


@torch.no_grad()
def predict(model, x_nhwc, device):
    """Eval-mode logits (on the CPU) for NHWC float32 images."""
    model.eval()
    outs = [model(to_nchw(x_nhwc[s]).to(device)).cpu() for s in batch_slices(len(x_nhwc), EVAL_BATCH)]
    return torch.cat(outs)


PROG = "torch_ref.train"
DEVICES = ("cpu", "cuda")


def add_torch_flags(p):
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (needs a C++ compiler on CPU)")


def default_args(**overrides):
    """The command line's defaults as an args object, for code that builds a trainer itself."""
    p = train_parser(PROG, "torch", DEVICES)
    add_torch_flags(p)
    return cli.default_args(p, **overrides)


@exit_on_user_error(PROG)
def main(argv=None):
    return run_train(PROG, "torch", DEVICES, TorchTrainer, argv, add_flags=add_torch_flags)


if __name__ == "__main__":
    main()
