"""JAX's persistent compilation cache: a second run of the same command compiles nothing (its
programs come from the cache on disk), and history.json says so apart from the epochs' seconds."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # three fresh processes


def run(tmp_path, name, env):
    out = str(tmp_path / name)
    r = subprocess.run([sys.executable, "-m", "flax_impl.train", "--data", "synthetic:300", "--model", "both",
                        "--epochs", "1", "--out", out, "--no-progress"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.load(open(os.path.join(out, "baseline", "history.json")))["compile"]


def test_a_second_run_loads_every_program_from_the_cache(tmp_path):
    env = dict(os.environ, LENET_COMPILE_CACHE=str(tmp_path / "jax-cache"))
    first, second = run(tmp_path, "a", env), run(tmp_path, "b", env)
    assert first["cache_misses"] > 0 and first["cache_hits"] == 0, first
    assert second["cache_misses"] == 0 and second["cache_hits"] == first["cache_misses"], second
    off = run(tmp_path, "c", dict(env, LENET_COMPILE_CACHE="0"))
    assert off["cache_hits"] == off["cache_misses"] == 0 and off["seconds"] > 0, off  # compiled, not cached
