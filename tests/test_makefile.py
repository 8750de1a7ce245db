"""The README's two commands as typed: `make train` with the framework's other names, and a
framework it does not know refused in one line."""
import os
import subprocess
import sys
import types

import pytest

from tests.conftest import NO_REAL_DATA, REPO, real_data_skips


def make(*args, env=None):
    # -o: take the venv as built (the test never installs anything); -n: print, do not train.
    return subprocess.run(["make", "-o", ".venv/.installed", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)


WITHOUT_CIFAR10 = {k: v for k, v in os.environ.items() if k != "CIFAR10"}  # a new shell, as the README's user has


def test_jax_is_another_name_for_flax():
    r = make("-n", "train", "FRAMEWORK=jax")
    assert r.returncode == 0, r.stderr
    assert "-m flax_impl.train --model both --epochs 100 --out runs/flax" in r.stdout


def test_an_unknown_framework_is_one_line():
    r = make("train", "FRAMEWORK=tensorflow")
    assert r.returncode != 0 and "No module named" not in r.stderr and "KeyError" not in r.stderr, r.stderr
    assert [line for line in r.stderr.splitlines() if "FRAMEWORK" in line] == [
        "FRAMEWORK=tensorflow is not one of flax, torch (or jax, pytorch)"], r.stderr


def test_make_test_uses_the_data_make_train_was_given(tmp_path):
    data, remembered = tmp_path / "cifar.tar.gz", tmp_path / "remembered"
    data.write_bytes(b"")
    r = make("train", f"CIFAR10={data}", f"DATA_FILE={remembered}", "PY=true")  # `true` stands in for training
    assert r.returncode == 0, r.stderr
    assert remembered.read_text().strip() == str(data.resolve())
    r = make("-n", "test", f"DATA_FILE={remembered}", "ARGS=-q", env=WITHOUT_CIFAR10)
    assert f'CIFAR10="{data.resolve()}"' in r.stdout and "-m pytest -q" in r.stdout, r.stdout
    # control: with nothing remembered and no CIFAR10, the tests get none
    r = make("-n", "test", f"DATA_FILE={tmp_path / 'none'}", env=WITHOUT_CIFAR10)
    assert 'CIFAR10=""' in r.stdout, r.stdout
    # a CIFAR10 given to make test wins over the remembered one
    r = make("-n", "test", f"DATA_FILE={remembered}", env={**WITHOUT_CIFAR10, "CIFAR10": "other.tar.gz"})
    assert 'CIFAR10="other.tar.gz"' in r.stdout, r.stdout


def test_a_path_that_does_not_exist_is_not_remembered(tmp_path):
    remembered = tmp_path / "remembered"
    r = make("train", f"CIFAR10={tmp_path / 'missing.tar.gz'}", f"DATA_FILE={remembered}", "PY=true")
    assert r.returncode == 0 and not remembered.exists(), r.stderr


@pytest.mark.slow  # make and a pytest process
def test_skipped_real_data_tests_are_said_at_the_end_with_the_command(tmp_path):
    env = {**os.environ, "CIFAR10": str(tmp_path / "no-such-data.tar.gz")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_sources.py::test_real_shared_copy"], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env=env)
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("1 tests that need the real CIFAR-10 were skipped") and "CIFAR10=" in last and \
        "make test" in last, r.stdout


def test_only_skips_for_want_of_data_are_counted():  # control: a test skipped for another reason is not
    report = lambda why: types.SimpleNamespace(longrepr=("tests/x.py", 1, f"Skipped: {why}"))  # noqa: E731
    stats = {"skipped": [report(NO_REAL_DATA), report("needs CUDA")], "passed": [report(NO_REAL_DATA)]}
    assert real_data_skips(stats) == stats["skipped"][:1]
