"""Flax checkpoints (flax.serialization's msgpack), written atomically, read as untrusted input.

    best.msgpack, last.msgpack   {"format", "framework", "meta": JSON (experiment.checkpoints), "params"}:
                                 params = flax.serialization.msgpack_restore(blob)["params"]
    train_state.msgpack          all lanes' params, optimiser state, step and run key: what --resume reads
"""
import json

import jax
import numpy as np
from flax import serialization

from experiment.atomic import atomic_write
from experiment.checkpoints import check_finite, check_meta, check_number, damaged
from experiment.errors import UserError
from experiment.sources.bounded import Limit, read_regular
from experiment.trainer import check_saved_lanes

FORMAT = 2  # train states; 1: written before lanes had a dropout rate and a group (no "format" key)
FILE_LIMIT = Limit(1 << 30, "a train state of 1,000 LeNet lanes is 0.75 GB")


def save_checkpoint(path, params, meta):
    blob = serialization.to_bytes({"format": meta["format"], "framework": "flax", "meta": json.dumps(meta),
                                   "params": params})
    atomic_write(path, lambda f: f.write(blob))


def save_train_state(path, lanes, epoch, state, histories):
    """What --resume needs, all lanes in one file: the whole state with its leading lane axis."""
    blob = serialization.to_bytes({
        "format": FORMAT, "framework": "flax", "kind": "train_state",
        "lanes": json.dumps([x.record() for x in lanes]),
        "epoch": epoch, "state": serialization.to_state_dict(state), "histories": json.dumps(histories)})
    atomic_write(path, lambda f: f.write(blob))


def read_msgpack(path, what, blob=None):
    """The file's msgpack tree, or UserError naming `what` it should have been."""
    try:
        return serialization.msgpack_restore(blob if blob is not None else read_regular(path, FILE_LIMIT, path))
    except Exception as e:  # msgpack raises several types for bad bytes
        raise UserError(f"{path} is not a readable Flax {what} ({type(e).__name__})") from None


def load_train_state(path, lanes, template):
    """(epoch, state shaped as `template`, histories) of a train state written for these lanes, or
    UserError. Format 1 (one model, its seeds) is read too."""
    raw = read_msgpack(path, "train state")
    if not isinstance(raw, dict) or raw.get("kind") != "train_state":
        raise UserError(f"{path} is not a Flax train state of this project")
    with damaged(path, "train state"):
        if raw.get("format", 1) == 1:
            saved = [{"model": raw["model"], "seed": s} for s in json.loads(raw["seeds"])]
        elif raw["format"] == FORMAT:
            saved = json.loads(raw["lanes"])
        else:
            raise UserError(f"{path} has train-state format {raw['format']!r}; this version reads formats 1-{FORMAT}")
        check_saved_lanes(path, saved, lanes)
        state = serialization.from_state_dict(template, raw["state"])
        check_shapes(path, state, template)
        check_finite(path, dict(_named(state["params"])))
        histories = json.loads(raw["histories"])
        if not isinstance(histories, list) or len(histories) != len(lanes):
            raise ValueError("one history per lane")
        epoch = check_number(path, "its epoch", raw["epoch"], 0, integer=True)
    return epoch, state, histories


def load_checkpoint(path, blob=None):
    """(Described, params) of a Flax checkpoint of this project, every field checked."""
    raw = read_msgpack(path, "checkpoint", blob)
    if isinstance(raw, dict) and raw.get("kind") == "train_state":
        raise UserError(f"{path} is a train state, not a Flax checkpoint (use its best.msgpack or last.msgpack)")
    if not isinstance(raw, dict) or raw.get("framework") != "flax" or not isinstance(raw.get("params"), dict):
        raise UserError(f"{path} is not a Flax checkpoint of this project")
    with damaged(path, "checkpoint"):
        if raw.get("format", 1) < 3:  # formats 1-2: model and config beside the meta
            meta = {**json.loads(raw["meta"]), "model": raw["model"], "config": json.loads(raw["config"])}
        else:
            meta = json.loads(raw["meta"])
    described = check_meta(path, meta)
    check_finite(path, dict(_named(raw["params"])))
    return described, raw["params"]


def check_shapes(path, params, template):
    """Raise UserError unless `params` has exactly the template's tree and shapes."""
    flat = {k: np.shape(v) for k, v in _named(params)}
    want = {k: np.shape(v) for k, v in _named(template)}
    if flat.keys() != want.keys():
        raise UserError(f"{path}: parameter names {sorted(flat)} do not match the model's {sorted(want)}")
    bad = [f"{k} {flat[k]} != {want[k]}" for k in want if flat[k] != want[k]]
    if bad:
        raise UserError(f"{path} does not fit the architecture: {bad[0]}")


def _named(tree):
    return [("/".join(str(getattr(k, "key", k)) for k in path), v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]]
