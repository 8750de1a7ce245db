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
from typing import NamedTuple, Protocol

import numpy as np

from experiment.config import PRECISIONS
from experiment.errors import UserError
from experiment.sources.bounded import Limit
from experiment.variants import MODELS

CHECKPOINT_FORMAT = 3  # 1-2: weights together with the optimiser state in one file
TRAIN_STATE_FORMAT = 2  # 1: written before lanes had a dropout rate and a group (no "format" key)
# A LeNet lane's weights and Adam state are 0.75 MB; a train state of 1,000 lanes stays under this.
FILE_LIMIT = Limit(1 << 30, "a train state of 1,000 LeNet lanes is 0.75 GB")
STATE_DICT_ONLY = "LeNet (weights only)"  # a bare state_dict without metadata: BaseLine and Dropout alike
LAYOUT = {"images": "normalised (x/255 - 0.5)/0.5; NCHW for PyTorch, NHWC for Flax", "fc1_inputs": "C,H,W"}


def checkpoint_meta(framework, lane, config, **meta):
    """The metadata a checkpoint of `lane` carries."""
    return {"format": CHECKPOINT_FORMAT, "framework": framework, "model": lane.model,
            "dropout_rate": lane.dropout_rate, "layout": LAYOUT, "config": config, **meta}


class Codec(Protocol):
    """How a framework writes and reads its files (flax_impl.checkpoint, torch_ref.checkpoint); what the
    files say of themselves is checked here, once for both.

    write_params(path, params, meta): one lane's weights (best.*, last.*) with checkpoint_meta
    write_state(path, header, tree): a train state: header (train_state_header) + the trainer's state tree
    read_state(path) -> (header, tree): the same, the weights checked finite, format-1 lanes translated
    """
    ext: str

    def write_params(self, path: str, params, meta: dict) -> None: ...

    def write_state(self, path: str, header: dict, tree) -> None: ...

    def read_state(self, path: str) -> tuple[dict, object]: ...


def train_state_header(lanes, epoch, histories, run_id):
    """What a train state says of itself besides the trainer's state: the run it belongs to (the id
    in its run.json), its lanes, the last epoch it holds and the lanes' histories up to it."""
    return {"format": TRAIN_STATE_FORMAT, "run_id": run_id, "lanes": [lane.record() for lane in lanes],
            "epoch": epoch, "histories": histories}


def state_format(path, raw):
    """The format of a train state as read (a dict), checked: 1 (no "format" key) or this version's."""
    fmt = raw.get("format", 1)
    if fmt not in (1, TRAIN_STATE_FORMAT):
        raise UserError(f"{path} has train-state format {fmt!r}; this version reads formats 1-{TRAIN_STATE_FORMAT}")
    return fmt


def check_state_header(path, header, lanes, run_id):
    """The saved epoch of a train state's header, once it is of the run `run_id` (a train state
    written before run ids names none) and its lanes and histories fit these lanes and that epoch;
    UserError otherwise (header["lanes"]: format 1 holds only model and seed)."""
    owner = header.get("run_id")
    if owner is not None and owner != run_id:
        raise UserError(f"{path} belongs to another run (run id {owner}, not {run_id or 'none'} as in this run's "
                        f"run.json); it cannot continue this one")
    check_saved_lanes(path, header["lanes"], lanes)
    with damaged(path, "train state"):
        histories = header["histories"]
        if not isinstance(histories, list) or len(histories) != len(lanes):
            raise ValueError("one history per lane")
        epochs = [[row["epoch"] for row in h["epochs"]] for h in histories]
        best = [h["best_epoch"] for h in histories]
    epoch = check_number(path, "its epoch", header["epoch"], 0, integer=True)
    for rows, b in zip(epochs, best):  # a resumed run appends after `epoch`: the histories must end there
        if rows != list(range(1, epoch + 1)) or (b is None) != (epoch == 0) or (b is not None and b not in rows):
            shown = ", ".join(map(str, rows[:6])) + (", ..." if len(rows) > 6 else "")
            raise UserError(f"{path}: its epoch {epoch} disagrees with its histories (epochs [{shown}], best epoch "
                            f"{b}); it is damaged or was edited")
    return epoch


def check_saved_lanes(path, saved, lanes):  # lanes: experiment.lanes.Lane
    """Raise UserError unless the lanes a train state was saved for (records; older formats hold
    fewer fields) are these lanes."""
    keys = set().union(*saved) if saved else set()
    want = [{k: v for k, v in lane.record().items() if k in keys} for lane in lanes]
    if saved != want:
        name = lambda xs: ", ".join(f"{x.get('group', x['model'])} seed {x['seed']}" for x in xs)  # noqa: E731
        raise UserError(f"{path} holds lanes {name(saved)}, not this run's {name(want)}")


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
