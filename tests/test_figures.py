"""Figures a reader can read, checked on the matplotlib objects: one colour per model or rate (train
solid, val dashed), every rate named by its rate, the legend below the panels (over no line), whole
epochs on the x axis, and the epoch of the kept checkpoint marked."""
import matplotlib.pyplot as plt
import pytest
from matplotlib.ticker import MaxNLocator

import experiment.plots as plots
from tests.conftest import TRAIN


@pytest.fixture
def drawn(monkeypatch):
    """The figures a command draws, by file name, before they are closed."""
    figures = {}
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (figures.__setitem__(path, fig), save(fig, path)))
    return figures


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


@pytest.mark.slow  # a training run of three lanes
def test_a_rates_figure_names_every_rate_and_keeps_one_colour_per_rate(drawn):
    TRAIN["flax"](["--data", "synthetic:300", "--epochs", "3", "--no-progress", "--out", "run",
                   "--dropout-rates", "0,0.25,0.5"])
    fig = drawn["run/curves.png"]
    loss, acc = fig.axes
    lines = lines_by_label(loss)
    for rate in ("rate 0 (BaseLine)", "rate 0.25", "rate 0.5"):
        train, val = lines[f"{rate}_train"], lines[f"{rate}_val"]
        assert train.get_color() == val.get_color() and (train.get_linestyle(), val.get_linestyle()) == ("-", "--")
    assert len({lines[f"{r}_train"].get_color() for r in ("rate 0 (BaseLine)", "rate 0.25", "rate 0.5")}) == 3
    assert loss.get_legend() is None and acc.get_legend() is None and len(fig.legends) == 1  # below, not on a panel
    assert all(isinstance(ax.xaxis.get_major_locator(), MaxNLocator) for ax in fig.axes)
    assert all(float(t).is_integer() for t in loss.get_xticks())


def test_each_models_figure_marks_the_epoch_its_best_checkpoint_is_from(drawn):
    import json
    TRAIN["torch"](["--data", "synthetic:300", "--epochs", "3", "--no-progress", "--out", "run", "--model", "dropout"])
    best = json.load(open("run/dropout/history.json"))["best_epoch"]
    loss, _ = drawn["run/dropout/curves.png"].axes
    marks = [line for line in loss.get_lines() if line.get_linestyle() == ":"]
    assert [m.get_xdata()[0] for m in marks] == [best] and f"best, epoch {best}" in marks[0].get_label()
    plt.close("all")


def test_the_sweeps_log_axis_shows_the_batch_sizes_alone(drawn, tmp_path, monkeypatch):
    """Minor tick labels of a log axis ("6x10^1") sat over the batch sizes."""
    import types

    from benchmarks.runners import sweep
    monkeypatch.setattr(sweep, "save_figure", plots.save_figure)  # its own name for it, bound at import
    stat = {"mean": 20.0, "ci95": 2.0, "n": 3}
    rates = {"0": {"peak_epoch": stat, "final_val_acc": {"mean": 0.6, "ci95": 0.01, "n": 3}},
             "0.5": {"ahead_of_baseline": {"from": 40}, "final_val_acc": {"mean": 0.62, "ci95": 0.01, "n": 3}}}
    a = types.SimpleNamespace(batches=[32, 64, 128], rates=[0.0, 0.5], out=str(tmp_path))
    sweep.figures(a, {str(b): {"rates": rates} for b in a.batches})
    ax = drawn[str(tmp_path / "fig_peak_and_crossing.png")].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32", "64", "128"]
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
