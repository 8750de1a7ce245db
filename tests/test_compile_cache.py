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


def test_damaged_entries_are_compiled_again_once_then_loaded(tmp_path):
    """An entry cut short by a kill, or left empty by a full disk: JAX would warn and recompile on
    every later run (it never rewrites an existing entry); removed, it is written afresh once."""
    cache = tmp_path / "jax-cache"
    env = dict(os.environ, LENET_COMPILE_CACHE=str(cache))
    first = run(tmp_path, "a", env)
    entries = sorted(p for p in cache.iterdir() if p.name.endswith("-cache"))
    assert len(entries) == first["cache_misses"] >= 2
    entries[0].write_bytes(entries[0].read_bytes()[: entries[0].stat().st_size // 2])  # truncated
    entries[1].write_bytes(b"")  # a full disk's empty file
    healed = run(tmp_path, "b", env)
    assert healed["cache_misses"] == 2 and healed["cache_hits"] == first["cache_misses"] - 2, healed
    again = run(tmp_path, "c", env)
    assert again["cache_misses"] == 0 and again["cache_hits"] == first["cache_misses"], again


def test_a_cache_path_that_is_a_file_is_said_once(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    r = subprocess.run([sys.executable, "-m", "flax_impl.train", "--data", "synthetic:300", "--model", "baseline",
                        "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"], cwd=REPO, capture_output=True,
                       text=True, timeout=600, env=dict(os.environ, LENET_COMPILE_CACHE=str(tmp_path / "not-a-folder")))
    assert r.returncode == 0, r.stderr[-2000:]
    warned = [line for line in r.stderr.splitlines() if "compile cache" in line]
    assert len(warned) == 1 and "cannot be used" in warned[0] and "compiling without it" in warned[0], r.stderr
