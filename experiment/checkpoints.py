"""What a checkpoint says about itself, in both frameworks, and the checks every loaded one passes.

best.* and last.* hold the weights alone (PyTorch: the bare state_dict the tutorial saves and
loads; Flax: the params tree) plus this metadata (PyTorch: in best.json beside best.pt; Flax: in
the same file). Optimiser state, step and RNG live in train_state.* (what --resume reads).

The layout matters to anyone loading the weights into their own model: the convolution output is
flattened in PyTorch's (C, H, W) order before fc1, also in Flax (whose natural NHWC flatten would
be (H, W, C)), so fc1's 400 inputs line up one to one across frameworks.
"""
import contextlib
import math
from typing import NamedTuple

import numpy as np

from experiment.cli import MODELS, PRECISIONS
from experiment.errors import UserError

CHECKPOINT_FORMAT = 3  # 1-2: weights together with the optimiser state in one file
STATE_DICT_ONLY = "LeNet (weights only)"  # a bare state_dict without metadata: BaseLine and Dropout alike
LAYOUT = {"images": "normalised (x/255 - 0.5)/0.5; NCHW for PyTorch, NHWC for Flax", "fc1_inputs": "C,H,W"}


def checkpoint_meta(framework, lane, config, **meta):
    """The metadata a checkpoint of `lane` carries."""
    return {"format": CHECKPOINT_FORMAT, "framework": framework, "model": lane.model,
            "dropout_rate": lane.dropout_rate, "layout": LAYOUT, "config": config, **meta}


class Described(NamedTuple):
    """What a checkpoint's metadata says of its weights."""
    model: str | None       # None: the weights came alone (BaseLine and Dropout evaluate alike)
    dropout_rate: float
    precision: str          # what it was trained at ('highest' where nothing says)
    epoch: int | None       # the epoch it was saved after (None where nothing says)


WEIGHTS_ALONE = Described(None, 0.0, "highest", None)


def check_meta(path, meta):
    """Described of checkpoint metadata, every field checked; UserError otherwise."""
    if not isinstance(meta, dict):
        raise UserError(f"{path}: its metadata is not a record ({type(meta).__name__})")
    fmt = meta.get("format", 1)
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise UserError(f"{path}: checkpoint format {fmt!r}; this version reads formats 1-{CHECKPOINT_FORMAT}")
    model = meta.get("model")
    if model not in MODELS:
        raise UserError(f"{path}: model {model!r} is not one of {', '.join(MODELS)}")
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise UserError(f"{path}: its config is not a record")
    rate = meta.get("dropout_rate", config.get("dropout_rate", 0.5))
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise UserError(f"{path}: dropout rate {rate!r} is not in [0, 1)")
    layout = meta.get("layout", LAYOUT)  # formats 1-2 were all written by this project's models
    if not isinstance(layout, dict) or layout.get("fc1_inputs") != LAYOUT["fc1_inputs"]:
        found = layout.get("fc1_inputs") if isinstance(layout, dict) else layout
        raise UserError(f"{path}: fc1 expects its inputs in {found!r} order; this project's models flatten in "
                        f"PyTorch's ({LAYOUT['fc1_inputs']}) order")
    precision = config.get("precision", "highest")  # written before --precision existed: full float32
    if precision not in PRECISIONS:
        raise UserError(f"{path}: precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    epoch = meta.get("epoch")
    if epoch is not None:
        check_number(path, "its epoch", epoch, 1, integer=True)
    return Described(model, float(rate), precision, epoch)


def check_finite(path, named_arrays):
    """Refuse weights that hold NaN or Inf, naming the first such tensor."""
    for name, a in named_arrays.items():
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise UserError(f"{path}: {name} holds {a.dtype} values, not floats")
        if not np.isfinite(a).all():
            bad = "NaN" if np.isnan(a).any() else "Inf"
            raise UserError(f"{path}: {name} holds {bad} values; a trained LeNet's weights are finite")


def check_number(path, what, value, low=-math.inf, high=math.inf, integer=False):
    """A metadata number, checked: UserError unless it is a (finite) number in [low, high]."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not integer or isinstance(value, int))
    if not ok or not low <= value <= high or (isinstance(value, float) and not math.isfinite(value)):
        raise UserError(f"{path}: {what} is {value!r}, not {'an integer' if integer else 'a number'} in "
                        f"[{low}, {high}]")
    return value


@contextlib.contextmanager
def damaged(path, what):
    """Inside: a missing or malformed field of a file becomes one line naming the file."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as e:
        raise UserError(f"{path} is a damaged {what} ({type(e).__name__}: {e})") from None
