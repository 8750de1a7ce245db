"""The PyTorch reference's files, written atomically, read as untrusted input: the codec the records
write with (experiment.checkpoints.Codec) and the checkpoints evaluate reads.

    best.pt, last.pt     the bare state_dict, as the tutorial saves and loads it:
                             model.load_state_dict(torch.load("runs/torch/dropout/best.pt"))
    best.json, last.json beside them: what the weights are (experiment.checkpoints) and the SHA-256
                         of the .pt they describe
    train_state.pt       all lanes' model, optimiser and RNG state: what --resume continues from
"""
import hashlib
import io
import json
import os
import sys
import warnings

import torch

from experiment.atomic import atomic_write, atomic_write_text
from experiment.checkpoints import FILE_LIMIT, STATE_DICT_ONLY, WEIGHTS_ALONE, check_finite, check_meta, damaged
from experiment.checkpoints import state_format
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS
from experiment.sources.bounded import Limit, read_regular
from torch_ref.models import build_model


def sidecar(path):
    return os.path.splitext(path)[0] + ".json"


def torch_bytes(obj):
    """torch.save's bytes. Serialised in memory, then written by atomic_write: torch.save writing a
    file itself reports a failed write (a full disk) as a RuntimeError, not the OSError it is."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class TorchCodec:
    ext = FRAMEWORKS["torch"].ckpt_ext

    def write_params(self, path, state_dict, meta):
        """The bare state_dict at `path`, then its metadata beside it (the .json names the .pt's hash,
        so a pair cut apart by a kill between the two writes is recognised)."""
        blob = torch_bytes(state_dict)
        atomic_write(path, lambda f: f.write(blob))
        record = {**meta, "weights": os.path.basename(path), "sha256": hashlib.sha256(blob).hexdigest()}
        atomic_write_text(sidecar(path), json.dumps(record, indent=1) + "\n")

    def write_state(self, path, header, states):
        """All lanes in one file: per lane the model, optimiser and RNG state."""
        blob = torch_bytes({"format": header["format"], "framework": "torch", "kind": "train_state",
                            "run_id": header["run_id"], "lanes": header["lanes"], "epoch": header["epoch"],
                            "states": states, "histories": json.dumps(header["histories"])})
        atomic_write(path, lambda f: f.write(blob))

    def read_state(self, path):
        """(header, per-lane states) of a train state; format 1 (one model, its seeds) too."""
        state, _ = read_torch(path, "train state")
        if not isinstance(state, dict) or state.get("kind") != "train_state":
            raise UserError(f"{path} is not a train state of this project")
        fmt = state_format(path, state)
        with damaged(path, "train state"):
            if fmt == 1:
                lanes, states = [{"model": state["model"], "seed": s} for s in state["seeds"]], state["lanes"]
            else:
                lanes, states = state["lanes"], state["states"]
            if len(states) != len(lanes):
                raise ValueError("one state per lane")
            header = {"format": fmt, "run_id": state.get("run_id"), "lanes": lanes, "epoch": state["epoch"],
                      "histories": json.loads(state["histories"])}
            for i, s in enumerate(states):
                check_finite(path, {f"lane {i} {k}": v for k, v in s["model"].items()})
        return header, states


CODEC = TorchCodec()



def read_torch(path, what):
    """(torch.load of the file on the CPU, its bytes), or UserError naming `what` it should have
    been. Weights only: no code in the file runs. Only a regular file of bounded size is read."""
    blob = read_regular(path, FILE_LIMIT, path)
    try:
        with warnings.catch_warnings():  # PyTorch warns about some pickles before refusing them: one line is ours
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True), blob
    except Exception as e:  # torch raises many types for bad files
        if looks_msgpack(blob):
            raise UserError(f"{path} is a Flax checkpoint; evaluate it with python -m flax_impl.evaluate") from None
        raise UserError(f"{path} is not a readable PyTorch {what} ({type(e).__name__})") from None


def looks_msgpack(blob):
    """Whether the bytes are a Flax checkpoint (a msgpack map holding params): read only when the
    msgpack package is there (it comes with Flax; torch_ref does not need it)."""
    try:
        import msgpack
        tree = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except Exception:  # not installed, or not msgpack: not a Flax file
        return False
    return isinstance(tree, dict) and "params" in tree


def is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_checkpoint(path):
    """(Described, state_dict) of a checkpoint: a bare state_dict
    (this project's or the tutorial's own `best_ckpt.pth`), with its .json beside it if there is
    one, or a format 1-2 checkpoint (a dict holding the state_dict and its metadata). Model None:
    the weights came alone (BaseLine and Dropout have the same ones and evaluate alike).
    UserError otherwise."""
    raw, blob = read_torch(path, "checkpoint")
    if is_state_dict(raw):
        sd, meta = raw, read_sidecar(path, blob)
    elif isinstance(raw, dict) and is_state_dict(raw.get("state_dict")):
        if raw.get("kind") == "train_state":
            raise UserError(f"{path} is a train state, not a checkpoint of this project")
        sd, meta = raw["state_dict"], raw
    else:
        raise UserError(f"{path} is not a checkpoint of this project (neither a state_dict nor a dict holding one)")
    check_finite(path, sd)
    if meta is None:
        return WEIGHTS_ALONE, sd
    return check_meta(path, meta), sd


def read_sidecar(path, blob):
    """The metadata beside a bare state_dict, or None (with a warning when it describes other weights)."""
    side = sidecar(path)
    if not os.path.exists(side):
        return None
    try:
        meta = json.loads(read_regular(side, Limit(1 << 20, "a checkpoint's metadata is a few KB"), side))
    except (ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise UserError(f"{side} is not readable JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(blob).hexdigest():
        print(f"warning: {side} describes other weights than {path}; evaluating the weights alone", file=sys.stderr)
        return None
    return meta


def model_from_checkpoint(path):
    """(name, torch model holding the checkpoint's weights, Described), or UserError."""
    described, sd = load_checkpoint(path)
    model_name, rate = described.model, described.dropout_rate
    name = model_name or STATE_DICT_ONLY
    model = build_model(model_name or "baseline", rate)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise UserError(f"{path} does not fit the {name} architecture: {first[0].strip()}") from None
    return name, model, described
