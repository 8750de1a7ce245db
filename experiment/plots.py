"""Figures: the tutorial's loss/accuracy panels (one per metric of experiment.metrics) and a confusion
matrix (matplotlib, no display)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiment.atomic import atomic_write  # noqa: E402
from experiment.history import column  # noqa: E402
from experiment.metrics import METRICS, SPLITS, splits_of  # noqa: E402

STYLES = {"train": "-", "val": "--", "train_eval": "-."}  # each split's line


def splits_in(history):
    """The splits a history's rows hold (train, val, and train_eval with --eval-train)."""
    return splits_of(history["epochs"][0]) if history["epochs"] else list(SPLITS)


def panels():
    """A figure of one panel per metric (loss, accuracy), laid out so that a legend below them fits."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(6 * len(METRICS), 5), layout="constrained")
    return fig, axes


def save_panels(fig, axes, path, title="", ylabel_suffix=""):
    """Label the metrics' panels, whole epochs on the x axis, one legend below them all (it covers
    no line), the title, and write the figure."""
    for ax, metric in zip(axes, METRICS.values()):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.label + ylabel_suffix)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def save_figure(fig, path):
    """Write a figure atomically (a full disk is one line naming the file, the old figure stays)."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def mark_best(axes, epoch, color, label):
    """A dotted line at the epoch whose checkpoint best.* keeps."""
    for ax in axes:
        ax.axvline(epoch, color=color, linestyle=":", linewidth=1, label=label if ax is axes[0] else None)


def plot_curves(histories, path, title=""):
    """Two panels (loss, accuracy); one train and one val line per history, in one colour (train
    solid, val dashed), and a dotted line at the epoch its best checkpoint is from.

    `histories` maps a line prefix (e.g. 'normal', 'drop', or '' for a single model) to a history.
    """
    fig, axes = panels()
    for i, (prefix, h) in enumerate(histories.items()):
        epochs, color = column(h, "epoch"), f"C{i}"
        for split in splits_in(h):
            style = STYLES[split]
            label = f"{prefix}_{split}" if prefix else split
            for ax, m in zip(axes, METRICS.values()):
                ax.plot(epochs, m.scale * column(h, f"{split}_{m.name}"), style, color=color, label=label)
        if h.get("best_epoch"):
            mark_best(axes, h["best_epoch"], color, f"{prefix + ' ' if prefix else ''}best, epoch {h['best_epoch']}")
    save_panels(fig, axes, path, title)


def plot_mean_std(groups, path, title=""):
    """Like plot_curves, but each line is the mean over a group of histories, with a ±1 std band,
    and the dotted line at the median of the seeds' best epochs."""
    fig, axes = panels()
    for i, (prefix, hs) in enumerate(groups.items()):
        n = min(len(h["epochs"]) for h in hs)
        epochs, color = column(hs[0], "epoch")[:n], f"C{i}"
        for split in splits_in(hs[0]):
            style = STYLES[split]
            label = f"{prefix}_{split}" if prefix else split
            for ax, m in zip(axes, METRICS.values()):
                vals = m.scale * np.stack([column(h, f"{split}_{m.name}")[:n] for h in hs])
                mean, std = vals.mean(0), vals.std(0)
                ax.plot(epochs, mean, style, color=color, label=f"{label} (n={len(hs)})")
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
        best = [h["best_epoch"] for h in hs if h.get("best_epoch")]
        if best:
            mark_best(axes, float(np.median(best)), color,
                      f"{prefix + ' ' if prefix else ''}best, median epoch {np.median(best):g}")
    save_panels(fig, axes, path, title, ", mean ± std over seeds")


def plot_confusion(matrix, classes, path, title=""):
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = matrix.max() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > thresh else "black")
    fig.colorbar(im, ax=ax)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def confusion_matrix(labels, preds, n_classes):
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, preds), 1)
    return m
