"""Checkpoints of the PyTorch reference: saved atomically, loaded with one-line errors."""
import torch

from experiment.atomic import atomic_write
from experiment.errors import UserError
from torch_ref.models import build_model


def save_checkpoint(path, model_name, model, optimizer, config, **meta):
    state = {"framework": "torch", "model": model_name, "config": config,
             "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), **meta}
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path):
    """Return the checkpoint dict, or raise UserError saying why it is not a usable one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise UserError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__})") from None
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
