"""Metrics of engines that keep them on the device during an epoch and read them once at its end."""
import numpy as np
import torch

from experiment.metrics import finite_or_raise, prefixed
from torch_ref.trainer import add_batch


def fetch_lanes(per_lane):
    """[{name: device tensor}] per lane -> {name: host array [lanes, ...]}: one read per name."""
    return {k: torch.stack([m[k] for m in per_lane]).cpu().numpy() for k in per_lane[0]}


def epoch_metrics(steps, sizes):
    """Per-step metrics {name: [lanes, steps]} of batches of `sizes` images -> per-lane epoch
    averages, summed as the tutorial engine sums them (so equal steps give equal epochs); Diverged
    for the first lane and step whose loss is NaN or Inf."""
    finite_or_raise(steps["loss"])
    per_lane = []
    for lane in range(len(steps["loss"])):
        totals = {}
        for step, n in enumerate(sizes):
            add_batch(totals, {k: v[lane, step].item() for k, v in steps.items()}, n)
        per_lane.append(prefixed("train", totals, sum(sizes)))
    return {k: np.array([m[k] for m in per_lane]) for k in per_lane[0]}
