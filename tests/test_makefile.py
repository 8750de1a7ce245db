"""The README's two commands as typed: `make train` with the framework's other names, and a
framework it does not know refused in one line."""
import subprocess

from tests.conftest import REPO


def make(*args):
    # -o: take the venv as built (the test never installs anything); -n: print, do not train.
    return subprocess.run(["make", "-o", ".venv/.installed", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


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
    r = make("-n", "test", f"DATA_FILE={remembered}", "ARGS=-q")
    assert f'CIFAR10="{data.resolve()}"' in r.stdout and "-m pytest -q" in r.stdout, r.stdout
    # control: with nothing remembered and no CIFAR10, the tests get none
    r = subprocess.run(["make", "-o", ".venv/.installed", "-n", "test", f"DATA_FILE={tmp_path / 'none'}"], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env={k: v for k, v in __import__("os").environ.items()
                                                                        if k != "CIFAR10"})
    assert 'CIFAR10=""' in r.stdout, r.stdout


def test_a_path_that_does_not_exist_is_not_remembered(tmp_path):
    remembered = tmp_path / "remembered"
    r = make("train", f"CIFAR10={tmp_path / 'missing.tar.gz'}", f"DATA_FILE={remembered}", "PY=true")
    assert r.returncode == 0 and not remembered.exists(), r.stderr


def test_skipped_real_data_tests_are_said_at_the_end_with_the_command(tmp_path):
    env = {**__import__("os").environ, "CIFAR10": str(tmp_path / "no-such-data.tar.gz")}
    r = subprocess.run([__import__("sys").executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_sources.py::test_real_shared_copy"], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env=env)
    tail = r.stdout.strip().splitlines()[-3:]
    assert any("1 tests that need the real CIFAR-10 were skipped" in line and "CIFAR10=" in line and
               "make test" in line for line in tail), r.stdout
    # control: a test that skips for another reason is not counted
    r = subprocess.run([__import__("sys").executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_engines.py", "-k", "cuda"], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env=env)
    assert "need the real CIFAR-10" not in r.stdout, r.stdout
