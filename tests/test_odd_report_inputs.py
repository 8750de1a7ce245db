"""The report on odd but legal input (made-up runs): one seed, a NaN in a history, and the report run
from outside the checkout with only the installed packages importable."""
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.made_up_results import MadeUp, built, short, write_folder
from tests.test_verdicts import flat_run, run


def made_up(tmp_path, seeds, frameworks=("flax", "torch"), epochs=20):
    n = len(seeds)
    test_acc = ([0.60 + 0.01 * i for i in range(n)], [0.62 + 0.01 * i for i in range(n)])
    return write_folder(tmp_path / f"conv{n}{len(frameworks)}",
                        {fw: MadeUp(run(15, epochs, n), flat_run(560, epochs, n), seeds=tuple(seeds), test_acc=test_acc)
                         for fw in frameworks})


@pytest.mark.parametrize("frameworks", [("flax",), ("flax", "torch")])
def test_one_seed_is_not_judged(tmp_path, frameworks):
    text = built(tmp_path, "--convergence", made_up(tmp_path, [0], frameworks))
    claims = text.split("## The tutorial's claims")[1].split("\n## ")[0]
    assert "**confirmed**" not in text and "**refuted**" not in text and "p < 1e-4" not in text
    assert not re.search(r"p = 0(?![.\d])", text) and "BaseLine better: p" not in short(text)
    assert claims.count("**not judged**") == 8 * len(frameworks)
    assert "1 seed: a test over seeds needs at least 2" in claims
    assert "not judged (1 seed" in short(text)
    # control: two seeds are judged
    text = built(tmp_path, "--convergence", made_up(tmp_path, [0, 1], frameworks))
    assert "**confirmed**" in text and "1 seed" not in text


def with_nan(folder, fw, epoch, field="val_loss"):
    path = os.path.join(folder, fw, "baseline", "seed_1", "history.json")
    h = json.load(open(path))
    h["epochs"][epoch - 1][field] = float("nan")
    json.dump(h, open(path, "w"))
    from benchmarks.report.summaries import convergence_summary
    conv = json.load(open(os.path.join(folder, "convergence.json")))
    conv.update(convergence_summary(folder, [f for f in ("flax", "torch") if f in conv], conv["seeds"], 20))
    json.dump(conv, open(os.path.join(folder, "convergence.json"), "w"))
    return folder


@pytest.mark.parametrize("frameworks", [("flax",), ("flax", "torch")])
def test_a_nan_in_a_history_is_not_judged_and_never_printed(tmp_path, frameworks):
    folder = with_nan(made_up(tmp_path, [0, 1, 2], frameworks), "flax", 5)
    text = built(tmp_path, "--convergence", folder)
    flax = text.split("**flax**")[1].split("\n\n**")[0].split("\n## ")[0]
    assert not re.search(r"\bnan\b", text, re.I), re.findall(r".{60}\bnan\b.{20}", text, re.I)
    assert "**refuted**" not in flax and "**confirmed**" not in flax
    assert "seed 1's BaseLine val loss is not a number at epoch 5" in flax
    # a NaN after epoch 10 leaves the epoch-10 claims judged (control: the check is per epoch read)
    folder = with_nan(made_up(tmp_path, [0, 1, 2], ("flax",), epochs=20), "flax", 15)
    flax = built(tmp_path, "--convergence", folder).split("**flax**")[1].split("\n## ")[0]
    assert re.search(r"\| c2 \|[^\n]*\*\*confirmed\*\*", flax) and re.search(r"\| a1 \|[^\n]*\*\*not judged\*\*", flax)


def installed_only(tmp_path):
    """A folder holding only the packages pyproject.toml installs (links), as a pip install would."""
    import tomllib
    site = tmp_path / "site"
    site.mkdir()
    include = tomllib.load(open(os.path.join(REPO, "pyproject.toml"), "rb"))["tool"]["setuptools"]["packages"]["find"]
    for pattern in include["include"]:
        name = pattern.rstrip("*")
        os.symlink(os.path.join(REPO, name), site / name)
    return site


def test_the_report_runs_outside_the_checkout_with_only_the_installed_packages(tmp_path):
    folder = made_up(tmp_path, [0, 1, 2])
    site, cwd = installed_only(tmp_path), tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run([sys.executable, "-m", "benchmarks.report", "--convergence", folder, "--out", "rep"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (cwd / "rep" / "REPORT.md").exists()
    # control: in that setting a module that is not installed cannot be imported
    r = subprocess.run([sys.executable, "-c", "import parity_tests"], cwd=cwd, env=env, capture_output=True)
    assert r.returncode != 0
