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


def load_checkpoint(path):
    """The raw checkpoint dict (numpy leaves), or UserError."""
    try:
        with open(path, "rb") as f:
            raw = serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several types for bad bytes
        raise UserError(f"{path} is not a readable Flax checkpoint ({type(e).__name__})") from None
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
