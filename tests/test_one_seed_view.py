"""'What one seed would have shown': how often a single seed, as the tutorial had, shows what the
tutorial saw, counted over the seeds run (made-up runs whose counts are known)."""
import re

import numpy as np

from tests.made_up_results import MadeUp, built, write_folder
from tests.test_verdicts import run

E = np.arange(1, 101)


def dropout_levels():
    """Per seed: Dropout flat at 550 and 590 (seeds 0, 1: below BaseLine's best ~600); seed 2 at 650 in
    epochs 40-60 and 590 elsewhere (its best above BaseLine's, its epoch 100 below); seeds 3-5 above."""
    acc = np.stack([np.full(100, 550), np.full(100, 590), np.where((E >= 40) & (E <= 60), 650, 590),
                    np.full(100, 620), np.full(100, 630), np.full(100, 640)])
    return acc, np.full((6, 100), 1.4), np.tile(1.2 - 0.1 * E / 100, (6, 1))


def row(text, fw):
    section = text.split("## What one seed would have shown")[1].split("\n## ")[0]
    return next(line for line in section.splitlines() if line.startswith(f"| {fw} |"))


def test_the_share_of_seeds_that_show_what_the_tutorial_saw(tmp_path):
    conv = write_folder(tmp_path / "conv", {"flax": MadeUp(run(15, 100), dropout_levels(), seeds=tuple(range(6)))})
    line = row(built(tmp_path, "--convergence", conv), "flax")
    counts = re.findall(r"(\d+) of (\d+) \(", line)
    # BaseLine ahead of Dropout at epoch 100; Dropout at 100 below BaseLine's best; BaseLine's best above Dropout's
    assert counts == [("0", "6"), ("3", "6"), ("2", "6")], line
    # control: Dropout far ahead in every seed: no seed would show it
    ahead = (np.full((6, 100), 700), *dropout_levels()[1:])
    conv = write_folder(tmp_path / "conv2", {"flax": MadeUp(run(15, 100), ahead, seeds=tuple(range(6)))})
    assert re.findall(r"(\d+) of (\d+) \(", row(built(tmp_path, "--convergence", conv), "flax")) == [("0", "6")] * 3
