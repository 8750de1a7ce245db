"""Checkpoints of the PyTorch reference: saved atomically, loaded with one-line errors."""
import json

import torch

from experiment.atomic import atomic_write
from experiment.errors import UserError
from experiment.trainer import check_saved_lanes
from torch_ref.models import build_model

FORMAT = 2  # 1: written before lanes had a dropout rate and a group (no "format" key)


def save_checkpoint(path, model_name, state_dict, optimizer_state, config, **meta):
    state = {"format": FORMAT, "framework": "torch", "model": model_name, "config": config,
             "state_dict": state_dict, "optimizer": optimizer_state, **meta}
    atomic_write(path, lambda f: torch.save(state, f))


def save_train_state(path, lanes, epoch, states, histories):
    """What --resume needs, all lanes in one file: per lane the model, optimiser and RNG state."""
    state = {"format": FORMAT, "framework": "torch", "kind": "train_state", "lanes": [x.record() for x in lanes],
             "epoch": epoch, "states": states, "histories": json.dumps(histories)}
    atomic_write(path, lambda f: torch.save(state, f))


def read_torch(path, what):
    """torch.load of the file on the CPU, or UserError naming `what` it should have been."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise UserError(f"{path} is not a readable PyTorch {what} ({type(e).__name__})") from None


def load_train_state(path, lanes):
    """(epoch, per-lane states, histories) of a train state written for these lanes, or UserError.
    Format 1 (one model, its seeds) is read too."""
    state = read_torch(path, "train state")
    if not isinstance(state, dict) or state.get("kind") != "train_state":
        raise UserError(f"{path} is not a train state of this project")
    if state.get("format", 1) == 1:
        saved, states = [{"model": state["model"], "seed": s} for s in state["seeds"]], state["lanes"]
    elif state["format"] == FORMAT:
        saved, states = state["lanes"], state["states"]
    else:
        raise UserError(f"{path} has train-state format {state['format']}; this version reads formats 1-{FORMAT}")
    check_saved_lanes(path, saved, lanes)
    return state["epoch"], states, json.loads(state["histories"])


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
