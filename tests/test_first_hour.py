"""What a new user sees: a run that says what it found and what to run next, an evaluation that says
which epoch it tested, a finished run resumed that says it is finished, lane times that say they are
shared, and help that says what a flag does."""
import json
import os

import pytest

from tests.conftest import EVALUATE, EXT, TRAIN

TINY = ["--data", "synthetic:300", "--epochs", "2", "--no-progress"]


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_a_run_ends_with_what_it_found_and_the_next_command(fw, capsys):
    TRAIN[fw]([*TINY, "--out", "run", "--seeds", "0,1"])
    out = capsys.readouterr().out
    summary = out[out.index("done; best"):]
    for model in ("baseline", "dropout"):
        hs = [json.load(open(os.path.join("run", model, f"seed_{s}", "history.json"))) for s in (0, 1)]
        epochs = sorted(h["best_epoch"] for h in hs)
        said = str(epochs[0]) if epochs[0] == epochs[1] else f"{epochs[0]}–{epochs[1]}"
        assert f"  {model} (2 seeds): epoch {said}, val loss " in summary
        assert f"run/{model}/seed_*/best{EXT[fw]} (and last{EXT[fw]}, curves.png)" in summary
    assert f"--ckpt run/baseline/seed_*/best{EXT[fw]} run/dropout/seed_*/best{EXT[fw]}" in summary
    assert "(all 4 lanes)" in out or fw == "torch"  # Flax: one program of the 4 lanes shares each epoch's time
    assert "(all 2 lanes)" in out or fw == "flax"  # PyTorch: a model's 2 seeds are trained one after the other
    report = EVALUATE[fw](["--ckpt", f"run/dropout/seed_0/best{EXT[fw]}", "--data", "synthetic:300"])
    best = json.load(open("run/dropout/seed_0/history.json"))["best_epoch"]
    assert report["epoch"] == best and f"dropout (epoch {best}) test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("fw", ["flax", "torch"])
def test_resuming_a_finished_run_says_so_and_how_to_extend_it(fw, capsys):
    TRAIN[fw]([*TINY, "--out", "run", "--model", "baseline"])
    capsys.readouterr()
    TRAIN[fw](["--resume", "run", "--no-progress"])
    out = capsys.readouterr().out
    assert "resuming at epoch 3" not in out
    assert f"all 2 epochs are done, nothing to train (to go on: python -m {fw}" in out and "--epochs N, N > 2" in out


def test_subset_help_says_the_images_are_drawn_at_random(capsys):
    with pytest.raises(SystemExit):
        TRAIN["flax"](["--help"])
    assert "--subset SUBSET train on N training images drawn at random" in " ".join(capsys.readouterr().out.split())


def test_no_progress_bar_when_no_one_watches(monkeypatch, capsys):
    """Output redirected to a file: PyTorch's bars would fill it; the epoch lines say it all."""
    import sys
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    TRAIN["torch"](["--data", "synthetic:300", "--epochs", "1", "--out", "run", "--model", "baseline"])  # bar on
    assert "it/s" not in capsys.readouterr().err
