"""Figures: the tutorial's loss/accuracy panels and a confusion matrix (matplotlib, no display)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiment.atomic import atomic_write  # noqa: E402
from experiment.history import column  # noqa: E402

# The tutorial's legend names for the combined figure.
TUTORIAL_PREFIX = {"baseline": "normal", "dropout": "drop"}


def save_panels(fig, axes, path, title="", ylabel_suffix=""):
    """Label the (loss, accuracy) panels, add the title and write the figure."""
    for ax, name in zip(axes, ("loss", "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name + ylabel_suffix)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path):
    """Write a figure atomically (a full disk is one line naming the file, the old figure stays)."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def plot_curves(histories, path, title=""):
    """Two panels (loss, accuracy); one train and one val line per history.

    `histories` maps a line prefix (e.g. 'normal', 'drop', or '' for a single model) to a history.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for prefix, h in histories.items():
        epochs = column(h, "epoch")
        for split, style in (("train", "-"), ("val", "--")):
            label = f"{prefix}_{split}" if prefix else split
            ax_loss.plot(epochs, column(h, f"{split}_loss"), style, label=label)
            ax_acc.plot(epochs, 100 * column(h, f"{split}_acc"), style, label=label)
    save_panels(fig, (ax_loss, ax_acc), path, title)


def plot_mean_std(groups, path, title=""):
    """Like plot_curves, but each line is the mean over a group of histories, with a ±1 std band."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for prefix, hs in groups.items():
        n = min(len(h["epochs"]) for h in hs)
        epochs = column(hs[0], "epoch")[:n]
        for split, style in (("train", "-"), ("val", "--")):
            label = f"{prefix}_{split}" if prefix else split
            for ax, field, scale in ((ax_loss, "loss", 1), (ax_acc, "acc", 100)):
                vals = scale * np.stack([column(h, f"{split}_{field}")[:n] for h in hs])
                mean, std = vals.mean(0), vals.std(0)
                (line,) = ax.plot(epochs, mean, style, label=f"{label} (n={len(hs)})")
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    save_panels(fig, (ax_loss, ax_acc), path, title, ", mean ± std over seeds")


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
