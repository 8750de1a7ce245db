"""The speed table as a figure: training img/s (model-images for several lanes) of each variant
against the number of lanes, one panel per batch size, log scales."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiment.plots import save_figure  # noqa: E402


def family(variant):
    """A line of the figure: Flax's program is one for any lanes (flax-scan-matmul-vmap16-tf32 ->
    flax-scan-matmul-tf32); PyTorch's vmap engines are engines of their own (torch-vmap16 -> torch-vmap)."""
    if variant.startswith("flax"):
        return re.sub(r"-vmap\d+", "", variant)
    return re.sub(r"vmap\d+", "vmap", variant)


def speed_figure(rows, path, model="dropout"):
    """Writes the figure; returns the batch sizes drawn (none: nothing measured for `model`)."""
    measured = [r for r in rows if not r.get("skipped") and r["model"] == model]
    batches = sorted({r["batch"] for r in measured})
    if not batches:
        return []
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4.5), squeeze=False, layout="constrained")
    for ax, batch in zip(axes[0], batches):
        series = {}
        for r in measured:
            if r["batch"] == batch:
                series.setdefault(family(r["variant"]), []).append((r["seeds"], r["img_per_s"]))
        for name, points in sorted(series.items()):
            lanes, rates = zip(*sorted(points))
            ax.plot(lanes, rates, "o-" if name.startswith("flax") else "s--", label=name)
        ax.set(xscale="log", yscale="log", xlabel="lanes (models trained at once)", ylabel="training img/s (all lanes)",
               title=f"{model}, batch {batch}")
        ax.minorticks_off()  # log axes' minor labels ("6x10^1") would crowd the lane counts
        lanes_drawn = sorted({n for points in series.values() for n, _ in points})
        ax.set_xticks(lanes_drawn, [str(n) for n in lanes_drawn])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    return batches
