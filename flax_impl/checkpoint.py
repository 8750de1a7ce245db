"""Flax checkpoints: params, optimiser state, step and run key in one msgpack file (flax.serialization),
written atomically; loaded with shape checks and one-line errors."""
import json

import jax
import numpy as np
from flax import serialization

from experiment.atomic import atomic_write
from experiment.errors import UserError
from experiment.trainer import check_saved_lanes

FORMAT = 2  # 1: written before lanes had a dropout rate and a group (no "format" key)


def save_checkpoint(path, model_name, state, config, **meta):
    blob = serialization.to_bytes({
        "format": FORMAT, "framework": "flax", "model": model_name, "config": json.dumps(config),
        "params": state["params"], "opt_state": serialization.to_state_dict(state["opt_state"]),
        "step": state["step"], "key": state["key"], "meta": json.dumps(meta)})
    atomic_write(path, lambda f: f.write(blob))


def save_train_state(path, lanes, epoch, state, histories):
    """What --resume needs, all lanes in one file: the whole state with its leading lane axis."""
    blob = serialization.to_bytes({
        "format": FORMAT, "framework": "flax", "kind": "train_state",
        "lanes": json.dumps([x.record() for x in lanes]),
        "epoch": epoch, "state": serialization.to_state_dict(state), "histories": json.dumps(histories)})
    atomic_write(path, lambda f: f.write(blob))


def read_msgpack(path, what):
    """The file's msgpack tree, or UserError naming `what` it should have been."""
    try:
        with open(path, "rb") as f:
            return serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several types for bad bytes
        raise UserError(f"{path} is not a readable Flax {what} ({type(e).__name__})") from None


def load_train_state(path, lanes, template):
    """(epoch, state shaped as `template`, histories) of a train state written for these lanes, or
    UserError. Format 1 (one model, its seeds) is read too."""
    raw = read_msgpack(path, "train state")
    if not isinstance(raw, dict) or raw.get("kind") != "train_state":
        raise UserError(f"{path} is not a Flax train state of this project")
    if raw.get("format", 1) == 1:
        saved = [{"model": raw["model"], "seed": s} for s in json.loads(raw["seeds"])]
    elif raw["format"] == FORMAT:
        saved = json.loads(raw["lanes"])
    else:
        raise UserError(f"{path} has train-state format {raw['format']}; this version reads formats 1-{FORMAT}")
    check_saved_lanes(path, saved, lanes)
    try:
        state = serialization.from_state_dict(template, raw["state"])
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} does not fit this run's model ({type(e).__name__})") from None
    check_shapes(path, state, template)
    return int(raw["epoch"]), state, json.loads(raw["histories"])


def load_checkpoint(path):
    """The raw checkpoint dict (numpy leaves), or UserError."""
    raw = read_msgpack(path, "checkpoint")
    if not isinstance(raw, dict) or raw.get("framework") != "flax" or "params" not in raw:
        raise UserError(f"{path} is not a Flax checkpoint of this project")
    raw["config"] = json.loads(raw["config"])
    return raw


def check_shapes(path, params, template):
    """Raise UserError unless `params` has exactly the template's tree and shapes."""
    flat = {"/".join(map(str, k)): np.shape(v) for k, v in _flatten(params)}
    want = {"/".join(map(str, k)): np.shape(v) for k, v in _flatten(template)}
    if flat.keys() != want.keys():
        raise UserError(f"{path}: parameter names {sorted(flat)} do not match the model's {sorted(want)}")
    bad = [f"{k} {flat[k]} != {want[k]}" for k in want if flat[k] != want[k]]
    if bad:
        raise UserError(f"{path} does not fit the architecture: {bad[0]}")


def _flatten(tree):
    return [(tuple(getattr(k, "key", k) for k in path), v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]]
