"""Data inputs crafted to do harm: code in a pickle, sizes that exhaust memory, files that block,
and a damaged decoded-array cache. Each is refused (or survived) with one line, quickly."""
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import experiment.data as data_module
from experiment.data import load_cifar10
from experiment.errors import UserError
from experiment.sources.official import write_official
from tests.conftest import REPO, tar_folder, write_imagefolder


def error_of(source):
    with pytest.raises(UserError) as e:
        load_cifar10(source)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def assert_same(a, b):
    for f in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# A load in a child process, so that a regression (a blocking open, an endless read) shows as a
# failed test, not a hung or swapping one: address space is capped at 1 GiB, time at 30 s.
CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from experiment.data import load_cifar10
from experiment.errors import UserError
t0 = time.perf_counter()
try:
    load_cifar10(sys.argv[1])
    error = None
except UserError as e:
    error = str(e)
print(json.dumps({"error": error, "seconds": time.perf_counter() - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load_in_child(source, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, CIFAR10_CACHE=str(tmp_path / "child-cache"), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, source], capture_output=True, text=True, timeout=30,
                       env=env, cwd=REPO)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    return json.loads(r.stdout)


# --- 1. a batch pickle cannot run code ---------------------------------------------------------

class OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


class RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.mark.parametrize("payload", [OpensAFile, RunsACommand])
@pytest.mark.parametrize("layout", ["folder", "tar.gz"])
def test_batch_pickle_cannot_run_code(tiny, tmp_path, payload, layout):
    witness = tmp_path / "witness"
    folder = write_official(tiny, str(tmp_path / "unpacked"))
    batch = os.path.join(folder, "cifar-10-batches-py", "data_batch_1")
    with open(batch, "wb") as f:
        pickle.dump({b"data": payload(str(witness)), b"labels": [0]}, f)
    source = folder
    if layout == "tar.gz":
        source = str(tmp_path / "cifar-10-python.tar.gz")
        with tarfile.open(source, "w:gz") as tar:
            tar.add(os.path.join(folder, "cifar-10-batches-py"), arcname="cifar-10-batches-py")
    msg = error_of(source)
    refused = {OpensAFile: "io.open", RunsACommand: f"{os.system.__module__}.system"}[payload]
    assert f"data_batch_1: refused to unpickle {refused} (a CIFAR-10 batch holds only arrays" in msg
    assert not witness.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_from_any_pickle_protocol_still_load(tiny, tmp_path, protocol):
    # Protocol 2 spells bytes as _codecs.encode, 5 spells arrays as _frombuffer; labels as NumPy ints.
    root = os.path.join(write_official(tiny, str(tmp_path / "unpacked")), "cifar-10-batches-py")
    for name in os.listdir(root):
        path = os.path.join(root, name)
        batch = pickle.loads(open(path, "rb").read())  # our own file: plain pickle is fine here
        if b"labels" in batch:
            batch[b"labels"] = [np.int64(v) for v in batch[b"labels"]]
        open(path, "wb").write(pickle.dumps(batch, protocol=protocol))
    assert_same(load_cifar10(root), tiny)
