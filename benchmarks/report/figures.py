"""The report's figures of the convergence runs: each framework's version of the tutorial's figure,
and each model with both frameworks overlaid (mean ± std over seeds)."""
import os

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from benchmarks.report.convergence_table import NAMES  # noqa: E402
from experiment.history import column  # noqa: E402
from experiment.plots import panels, plot_mean_std, save_panels  # noqa: E402
from experiment.variants import MODELS, VARIANTS  # noqa: E402


def figures(hs, out, frameworks, n):
    files = []
    for fw in frameworks:
        path = f"fig_{fw}_curves.png"
        plot_mean_std({VARIANTS[m].legend: hs[fw][m] for m in MODELS}, os.path.join(out, path),
                      title=f"{fw}: BaseLine vs Dropout, mean ± std over {n} seeds")
        files.append((f"{fw}: the tutorial's figure, mean ± std over seeds", path))
    for m in MODELS:
        fig, axes = panels()
        for fw in frameworks:
            for split, style in (("train", "-"), ("val", "--")):
                for ax, field, scale in ((axes[0], "loss", 1), (axes[1], "acc", 100)):
                    k = min(len(h["epochs"]) for h in hs[fw][m])
                    v = scale * np.stack([column(h, f"{split}_{field}")[:k] for h in hs[fw][m]])
                    (line,) = ax.plot(np.arange(1, k + 1), v.mean(0), style, label=f"{fw} {split}")
                    ax.fill_between(np.arange(1, k + 1), v.mean(0) - v.std(0), v.mean(0) + v.std(0),
                                    color=line.get_color(), alpha=0.15)
        path = f"fig_{m}_frameworks.png"
        save_panels(fig, axes, os.path.join(out, path), f"{NAMES[m]}: frameworks overlaid (mean ± std over {n} seeds)")
        files.append((f"{NAMES[m]}: both frameworks", path))
    return files
