"""The per-epoch metrics: the one table that says what each is, how it reduces, how it is logged and
drawn, and the schema of a history row.

Each framework computes a batch's metrics in one place (its `batch_metrics`): a MEAN metric is the
batch's mean over its images, a COUNT one a number of images (e.g. the correct ones). Every
reduction below reads that rule from this table, in both frameworks. To add a metric: one entry
here and one line in each framework's `batch_metrics`; history.json, the log line and the figures
(one panel per metric) follow.
"""
from dataclasses import dataclass

import numpy as np

from experiment.errors import Diverged

MEAN, COUNT = "mean", "count"


@dataclass(frozen=True)
class Metric:
    name: str       # history fields train_<name>, val_<name>
    reduce: str     # MEAN or COUNT
    log: str        # its value in the epoch's log line
    scale: float    # shown (logged, drawn) as value * scale
    label: str      # its figure panel's y axis


METRICS = {m.name: m for m in (
    Metric("loss", MEAN, "loss {:.4f}", 1, "loss"),
    Metric("acc", COUNT, "acc {:.2f}%", 100, "accuracy (%)"),
)}
SPLITS = ("train", "val")
# --eval-train: the training set measured in eval mode (no dropout) after the epoch, like the validation
# set. The train_ metrics are the running averages over the epoch's steps, dropout active, as the tutorial
# reports them: higher under dropout partly by construction.
TRAIN_EVAL = "train_eval"
SPLIT_NAMES = {"train": "train", "val": "val", TRAIN_EVAL: "train (eval mode)"}


def epoch_fields(eval_train=False):
    """The fields of a history row, in order."""
    splits = SPLITS + ((TRAIN_EVAL,) if eval_train else ())
    return ("epoch", *(f"{s}_{m}" for s in splits for m in METRICS), "seconds")


EPOCH_FIELDS = epoch_fields()


def is_mean(name):
    return METRICS[name].reduce == MEAN


def image_sum(name, value, n):
    """A batch's metric over its n images as their sum: a mean counts once per image."""
    return value * n if is_mean(name) else value


def image_average(name, value, n):
    """A batch's metric over its n images as a per-image average."""
    return value if is_mean(name) else value / n


def chunk_average(name, total, k):
    """The metric of a batch from the sum over its k equal chunks: means averaged, counts summed."""
    return total / k if is_mean(name) else total


def check_names(metrics, split):
    """Raise unless a trainer's metrics for `split` are exactly the declared ones."""
    want = {f"{split}_{m}" for m in METRICS}
    got = set(metrics)
    if got != want:
        extra, missing = sorted(got - want), sorted(want - got)
        raise ValueError(f"{split} metrics do not match experiment.metrics.METRICS: "
                         f"unknown {extra}, missing {missing}")
    return metrics


def prefixed(split, totals, count):
    """{name: per-lane sum over `count` images} -> {split_name: per-image average}."""
    return check_names({f"{split}_{k}": v / count for k, v in totals.items()}, split)


def splits_of(row):
    """The splits a history row (or a trainer's metrics) holds, in order."""
    return [s for s in (*SPLITS, TRAIN_EVAL) if f"{s}_{next(iter(METRICS))}" in row]


def log_text(row):
    """A history row's metrics as the epoch's log line shows them: 'train loss 0.1234 acc 56.78%  val ...'."""
    return "  ".join(f"{SPLIT_NAMES[s]} " + " ".join(m.log.format(m.scale * row[f"{s}_{m.name}"])
                                                     for m in METRICS.values()) for s in splits_of(row))


def finite_or_raise(losses, first_step=0):
    """Raise Diverged for the first lane/step whose loss is NaN or Inf. losses: [lanes, steps]."""
    bad = ~np.isfinite(np.asarray(losses, dtype=np.float64))
    if bad.any():
        lane, step = np.argwhere(bad)[0]
        raise Diverged(int(lane), first_step + int(step) + 1, float(np.asarray(losses)[lane, step]))
