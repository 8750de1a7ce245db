"""`pytest --costs` (parity_tests/costs.py): it counts, on any test it is given, and its options never
swallow a test path. Each case runs pytest in a folder of its own with the checkout's root conftest.py
(where the options live) and two small test files: one that compiles and trains, one that fails."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

COUNTED = '''
import jax
import jax.numpy as jnp
import torch


def test_compiles_a_program():
    assert float(jax.jit(lambda x: (x * 2).sum())(jnp.ones(3))) == 6.0


def test_takes_three_adam_steps():
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
'''
NOT_ASKED_FOR = "def test_never_run():\n    assert False, 'a test file nobody named ran'\n"


def pytest_in(folder, *args):
    shutil.copy(os.path.join(REPO, "conftest.py"), folder / "conftest.py")
    (folder / "test_counted.py").write_text(COUNTED)
    (folder / "test_other.py").write_text(NOT_ASKED_FOR)
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a pytest process of its own
def test_costs_counts_compiles_and_steps(tmp_path):
    r = pytest_in(tmp_path, "test_counted.py", "--costs")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {line.split()[-1]: line.split() for line in r.stdout.splitlines() if line.strip().endswith(
        ("test_compiles_a_program", "test_takes_three_adam_steps"))}
    # columns: s, compiles, progs, xla s, hits, trainers, graphs, steps
    assert int(rows["test_compiles_a_program"][2]) >= 1, r.stdout  # the jit program, named as one
    assert int(rows["test_takes_three_adam_steps"][7]) == 3, r.stdout


@pytest.mark.slow  # a pytest process of its own
def test_costs_before_a_test_path_runs_that_file_and_keeps_it(tmp_path):
    r = pytest_in(tmp_path, "--costs", "test_counted.py")
    assert (tmp_path / "test_counted.py").read_text() == COUNTED  # not replaced by the JSON
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.slow  # a pytest process of its own
def test_costs_json_writes_every_row_to_the_file_named(tmp_path):
    r = pytest_in(tmp_path, "--costs-json", "costs.json", "test_counted.py")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.load(open(tmp_path / "costs.json"))
    assert rows["test_counted.py::test_takes_three_adam_steps"]["torch_steps"] == 3
    assert rows["test_counted.py::test_compiles_a_program"]["programs"]


def test_costs_json_refuses_a_test_file_as_its_output(tmp_path):
    """A JSON file named like a test file is a slip of the hand (the option before a test path): a
    usage error that names it, and the file kept."""
    r = pytest_in(tmp_path, "--costs-json", "test_counted.py")
    assert r.returncode == 4 and "--costs-json" in r.stderr and "test_counted.py" in r.stderr, r.stderr
    assert (tmp_path / "test_counted.py").read_text() == COUNTED
