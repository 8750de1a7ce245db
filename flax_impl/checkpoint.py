"""Flax's files (flax.serialization's msgpack), written atomically, read as untrusted input: the
codec the records write with (experiment.checkpoints.Codec) and the checkpoint evaluate reads.

    best.msgpack, last.msgpack   {"format", "framework", "meta": JSON (experiment.checkpoints), "params"}:
                                 params = flax.serialization.msgpack_restore(blob)["params"]
    train_state.msgpack          all lanes' params, optimiser state, step and run key: what --resume reads
"""
import json

import jax
import numpy as np
from flax import serialization

from experiment.atomic import atomic_write
from experiment.checkpoints import FILE_LIMIT, check_finite, check_meta, damaged, state_format
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS
from experiment.sources.bounded import read_regular


class FlaxCodec:
    ext = FRAMEWORKS["flax"].ckpt_ext

    def write_params(self, path, params, meta):
        blob = serialization.to_bytes({"format": meta["format"], "framework": "flax", "meta": json.dumps(meta),
                                       "params": params})
        atomic_write(path, lambda f: f.write(blob))

    def write_state(self, path, header, state):
        """All lanes in one file: the whole state with its leading lane axis."""
        blob = serialization.to_bytes({
            "format": header["format"], "framework": "flax", "kind": "train_state", "run_id": header["run_id"],
            "lanes": json.dumps(header["lanes"]), "epoch": header["epoch"],
            "state": serialization.to_state_dict(state), "histories": json.dumps(header["histories"])})
        atomic_write(path, lambda f: f.write(blob))

    def read_state(self, path):
        """(header, the state as a tree of arrays) of a train state; format 1 (one model, its seeds) too."""
        raw = read_msgpack(path, "train state")
        if not isinstance(raw, dict) or raw.get("kind") != "train_state":
            raise UserError(f"{path} is not a Flax train state of this project")
        fmt = state_format(path, raw)
        with damaged(path, "train state"):
            lanes = [{"model": raw["model"], "seed": s} for s in json.loads(raw["seeds"])] if fmt == 1 \
                else json.loads(raw["lanes"])
            header = {"format": fmt, "run_id": raw.get("run_id"), "lanes": lanes, "epoch": raw["epoch"],
                      "histories": json.loads(raw["histories"])}
            check_finite(path, dict(named_leaves(raw["state"]["params"])))
        return header, raw["state"]


CODEC = FlaxCodec()


def read_msgpack(path, what, blob=None):
    """The file's msgpack tree, or UserError naming `what` it should have been."""
    try:
        return serialization.msgpack_restore(blob if blob is not None else read_regular(path, FILE_LIMIT, path))
    except Exception as e:  # msgpack raises several types for bad bytes
        raise UserError(f"{path} is not a readable Flax {what} ({type(e).__name__})") from None


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
    check_finite(path, dict(named_leaves(raw["params"])))
    return described, raw["params"]


def shape_mismatch(params, template):
    """What differs between the tree and shapes of `params` and of `template` (None: nothing)."""
    flat = {k: np.shape(v) for k, v in named_leaves(params)}
    want = {k: np.shape(v) for k, v in named_leaves(template)}
    if flat.keys() != want.keys():
        return f"has parameter names {sorted(flat)}, not the model's {sorted(want)}"
    bad = [f"{k} {flat[k]} != {want[k]}" for k in want if flat[k] != want[k]]
    return f"does not fit the architecture: {bad[0]}" if bad else None


def check_shapes(path, params, template):
    """Raise UserError unless `params` has exactly the template's tree and shapes."""
    wrong = shape_mismatch(params, template)
    if wrong:
        raise UserError(f"{path} {wrong}")


def named_leaves(tree):
    return [("/".join(str(getattr(k, "key", k)) for k in path), v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]]
