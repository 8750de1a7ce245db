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
