"""Flax checkpoints: params, optimiser state, step and run key in one msgpack file (flax.serialization),
written atomically; loaded with shape checks and one-line errors."""
import json

import jax
import numpy as np
from flax import serialization

from experiment.atomic import atomic_write
from experiment.errors import UserError


def save_checkpoint(path, model_name, state, config, **meta):
    blob = serialization.to_bytes({
        "framework": "flax", "model": model_name, "config": json.dumps(config),
        "params": state["params"], "opt_state": serialization.to_state_dict(state["opt_state"]),
        "step": state["step"], "key": state["key"], "meta": json.dumps(meta)})
    atomic_write(path, lambda f: f.write(blob))


def save_train_state(path, model_name, seeds, epoch, state, histories):
    """What --resume needs, all seeds in one file: the whole state with its leading seed axis."""
    blob = serialization.to_bytes({
        "framework": "flax", "kind": "train_state", "model": model_name, "seeds": json.dumps(list(seeds)),
        "epoch": epoch, "state": serialization.to_state_dict(state), "histories": json.dumps(histories)})
    atomic_write(path, lambda f: f.write(blob))


def read_msgpack(path, what):
    """The file's msgpack tree, or UserError naming `what` it should have been."""
    try:
        with open(path, "rb") as f:
            return serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several types for bad bytes
        raise UserError(f"{path} is not a readable Flax {what} ({type(e).__name__})") from None


def load_train_state(path, model_name, seeds, template):
    """(epoch, state shaped as `template`, histories), or UserError."""
    raw = read_msgpack(path, "train state")
    if not isinstance(raw, dict) or raw.get("kind") != "train_state":
        raise UserError(f"{path} is not a Flax train state of this project")
    saved_seeds = json.loads(raw["seeds"])
    if raw["model"] != model_name or saved_seeds != list(seeds):
        raise UserError(f"{path} holds {raw['model']} seeds {saved_seeds}, not {model_name} seeds {list(seeds)}")
    try:
        state = serialization.from_state_dict(template, raw["state"])
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} does not fit this run's {model_name} model ({type(e).__name__})") from None
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
