"""Checkpoints of the PyTorch reference: saved atomically, loaded with one-line errors."""
import json

import torch

from experiment.atomic import atomic_write
from experiment.errors import UserError
from torch_ref.models import build_model


def save_checkpoint(path, model_name, model, optimizer, config, **meta):
    state = {"framework": "torch", "model": model_name, "config": config,
             "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), **meta}
    atomic_write(path, lambda f: torch.save(state, f))


def save_train_state(path, model_name, seeds, epoch, lanes, histories):
    """What --resume needs, all seeds in one file: per lane the model, optimiser and RNG state."""
    state = {"framework": "torch", "kind": "train_state", "model": model_name, "seeds": list(seeds),
             "epoch": epoch, "lanes": lanes, "histories": json.dumps(histories)}
    atomic_write(path, lambda f: torch.save(state, f))


def read_torch(path, what):
    """torch.load of the file on the CPU, or UserError naming `what` it should have been."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise UserError(f"{path} is not a readable PyTorch {what} ({type(e).__name__})") from None


def load_train_state(path, model_name, seeds):
    """(epoch, lanes, histories) of a train state written by save_train_state, or UserError."""
    state = read_torch(path, "train state")
    if not isinstance(state, dict) or state.get("kind") != "train_state":
        raise UserError(f"{path} is not a train state of this project")
    if state["model"] != model_name or state["seeds"] != list(seeds):
        raise UserError(f"{path} holds {state['model']} seeds {state['seeds']}, not {model_name} seeds {list(seeds)}")
    return state["epoch"], state["lanes"], json.loads(state["histories"])


def load_checkpoint(path):
    """Return the checkpoint dict, or raise UserError saying why it is not a usable one."""
    if path.endswith(".msgpack"):  # torch_ref does not depend on JAX; flax_impl reads both formats
        raise UserError(f"{path} is a Flax checkpoint; evaluate it with python -m flax_impl.evaluate")
    ckpt = read_torch(path, "checkpoint")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or ckpt.get("model") not in ("baseline", "dropout"):
        raise UserError(f"{path} is not a checkpoint of this project (no model name / state_dict)")
    return ckpt


def model_from_checkpoint(path):
    ckpt = load_checkpoint(path)
    rate = ckpt.get("config", {}).get("dropout_rate", 0.5)
    model = build_model(ckpt["model"], rate)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise UserError(f"{path} does not fit the {ckpt['model']} architecture: {first[0].strip()}") from None
    return ckpt["model"], model
