"""The per-epoch metrics every trainer reports, and the schema of a history row.

A trainer computes, for each batch, a dict of metrics in one place per framework (its
`batch_metrics`): a float is the batch's mean, an int a count (e.g. correct images). Each trainer
turns an epoch of them into per-image averages per lane, prefixed `train_` or `val_`. To add a
metric: compute it in both frameworks' `batch_metrics` and name it here; the loop, history.json
and the figures need nothing else.
"""
METRICS = ("loss", "acc")
SPLITS = ("train", "val")
EPOCH_FIELDS = ("epoch", *(f"{s}_{m}" for s in SPLITS for m in METRICS), "seconds")


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
    """{name: per-lane sum} over `count` images -> {split_name: per-image average}."""
    return check_names({f"{split}_{k}": v / count for k, v in totals.items()}, split)
