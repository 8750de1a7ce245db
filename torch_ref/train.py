"""python -m torch_ref.train: the tutorial's training, in PyTorch eager.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
"""
import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from experiment.entry import run_train
from experiment.errors import UserError, exit_on_user_error
from experiment.split import batch_slices
from torch_ref.checkpoint import save_checkpoint
from torch_ref.models import build_model

EVAL_BATCH = 1000


def to_nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))


def pick_device(name):
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible to PyTorch")
    return torch.device(name)


class TorchTrainer:
    """One model, its Adam optimiser and the data on the device (see experiment.loop)."""

    ckpt_ext = ".pt"

    def __init__(self, model_name, splits, args):
        self.dev = pick_device(args.device)
        torch.manual_seed(args.seed)  # per model, so `--model both` == two single-model runs
        torch.use_deterministic_algorithms(True)
        self.name, self.config = model_name, vars(args)
        self.model = build_model(model_name, args.dropout_rate).to(self.dev)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batch_size, self.progress = args.batch_size, not args.no_progress
        self.train_x, self.train_y = to_nchw(splits.train_x).to(self.dev), torch.from_numpy(splits.train_y).to(self.dev)
        self.device = str(self.dev) if self.dev.type != "cuda" else torch.cuda.get_device_name(self.dev)
        self.versions = {"torch": torch.__version__}

    def train_epoch(self, epoch, order):
        """The tutorial's Train step: running loss and accuracy over the epoch, dropout active."""
        self.model.train()
        order = torch.from_numpy(order).to(self.dev)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(batch_slices(len(order), self.batch_size), desc=f"{self.name} epoch {epoch}",
                   leave=False, disable=not self.progress, mininterval=0.5)
        for s in bar:
            idx = order[s]
            x, y = self.train_x[idx], self.train_y[idx]
            self.opt.zero_grad()
            out = self.model(x)
            loss = self.loss_fn(out, y)
            loss.backward()
            self.opt.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.1f}%", refresh=False)
        return loss_sum / seen, correct / seen

    @torch.no_grad()
    def evaluate(self, x, y):
        logits = self.predict(x)
        y = torch.from_numpy(y)
        loss = self.loss_fn(logits, y).item()
        return loss, (logits.argmax(1) == y).float().mean().item()

    @torch.no_grad()
    def predict(self, x_nhwc):
        return predict(self.model, x_nhwc, self.dev)

    def save(self, path, **meta):
        save_checkpoint(path, self.name, self.model, self.opt, self.config, **meta)


@torch.no_grad()
def predict(model, x_nhwc, device):
    """Eval-mode logits (on the CPU) for NHWC float32 images."""
    model.eval()
    outs = [model(to_nchw(x_nhwc[s]).to(device)).cpu() for s in batch_slices(len(x_nhwc), EVAL_BATCH)]
    return torch.cat(outs)


PROG = "torch_ref.train"


@exit_on_user_error(PROG)
def main(argv=None):
    return run_train(PROG, "torch", ("cpu", "cuda"), TorchTrainer, argv)


if __name__ == "__main__":
    main()
