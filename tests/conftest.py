import contextlib
import importlib
import json
import os
import shutil
import tarfile

import pytest
from PIL import Image

from experiment.dataset import CLASSES
from experiment.frameworks import FRAMEWORKS
from experiment.sources.synthetic import make_synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_COPY = os.path.join(REPO, "..", "shared", "datasets", "cifar10-jpeg.tar.gz")
# What one accelerator run brought back (2026-11-30): every step cut by its time cap.
DEVICE_RESULTS = os.path.join(REPO, "..", "shared", "notes", "gpu-h200-2026-11-30-results.tar.gz")


@pytest.fixture(scope="session", autouse=True)
def shared_compile_cache(tmp_path_factory):
    """One JAX compilation cache for the session (subprocesses inherit it): each program is
    compiled once, not once per test. Tests of the cache itself set their own."""
    os.environ["LENET_COMPILE_CACHE"] = str(tmp_path_factory.mktemp("jax-compile"))


# The decoded-array cache a caller names (a device lease names one for all its steps, so the JPEGs
# are decoded once a lease), read before any test changes the variable.
NAMED_DATA_CACHE = os.environ.get("CIFAR10_CACHE")


@pytest.fixture(scope="session")
def real_data_cache(tmp_path_factory):
    """Where the real data's decoded arrays are kept: the named cache, else one of this session's
    folders (nothing is written to the user's own cache unless they name it)."""
    return NAMED_DATA_CACHE or str(tmp_path_factory.mktemp("real-data-cache"))


@pytest.fixture(autouse=True)
def private_cache(request, tmp_path, monkeypatch, real_data_cache):
    """Each test gets its own decoded-array cache, so no test sees another's files; tests of the
    real data share one, so the 60,000 JPEGs are decoded once a session, not once a test."""
    shared = "real_data" in request.fixturenames
    monkeypatch.setenv("CIFAR10_CACHE", real_data_cache if shared else str(tmp_path / "cache"))


@pytest.fixture
def tiny():
    return make_synthetic(200, 50, seed=7)


def write_imagefolder(data, root, ext="png", classes=CLASSES):
    for split in ("train", "test"):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        for i, (img, label) in enumerate(zip(x, y)):
            d = os.path.join(root, split, classes[label])
            os.makedirs(d, exist_ok=True)
            Image.fromarray(img).save(os.path.join(d, f"{i:05d}.{ext}"))
    return root


def tar_folder(folder, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar10-images")
    return path


NO_REAL_DATA = "real CIFAR-10 not available (set CIFAR10=path)"  # the skip reason the run's summary counts


def real_data_skips(stats):
    """The skipped reports among pytest's terminal stats that skipped for want of the real data."""
    return [r for r in stats.get("skipped", []) if NO_REAL_DATA in str(r.longrepr)]


def real_data_path():
    """The real CIFAR-10 copy: $CIFAR10 (which `make test` sets to the data `make train` was given),
    else the shared JPEG copy beside the checkout; None when neither is there."""
    path = os.environ.get("CIFAR10") or SHARED_COPY
    return path if os.path.exists(path) else None


@pytest.fixture(scope="session")
def real_data():
    path = real_data_path()
    if path is None:
        pytest.skip(NO_REAL_DATA)
    return path


def history_without_timings(path):
    """(per-epoch rows without `seconds`, the whole history): what determinism tests compare."""
    h = json.load(open(path))
    return [{k: v for k, v in e.items() if k != "seconds"} for e in h["epochs"]], h


# The command lines of both frameworks, and a finished tiny run of each for the bad-input tests.
TRAIN = {name: importlib.import_module(fw.train).main for name, fw in FRAMEWORKS.items()}
EVALUATE = {name: importlib.import_module(fw.evaluate).main for name, fw in FRAMEWORKS.items()}
EXT = {name: fw.ckpt_ext for name, fw in FRAMEWORKS.items()}
OTHER = {"flax": "torch", "torch": "flax"}
TINY_RUN = ["--data", "synthetic:300", "--model", "baseline", "--epochs", "1", "--no-progress"]


@contextlib.contextmanager
def one_torch_thread():
    """PyTorch on one CPU thread: the tests' models and batches are tiny, and a thread pool made them
    slower, several times so on a busy machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def torch_on_one_thread():
    with one_torch_thread():
        yield


def train_each(tmp_path_factory, args):
    """{framework: the folder of a finished run of `args`}, trained once for the tests that copy it."""
    runs = {}
    for fw, main in TRAIN.items():
        runs[fw] = str(tmp_path_factory.mktemp(fw) / "run")
        main([*args, "--out", runs[fw]])
    return runs


def copier(runs, tmp_path, name):
    """copy(fw): a fresh copy of runs[fw] in this test's folder, for a test that changes it."""
    def copy(fw):
        dst = str(tmp_path / f"{fw}-{name}")
        shutil.copytree(runs[fw], dst)
        return dst
    return copy


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
    """One finished tiny run per framework; each test works on a copy."""
    return train_each(tmp_path_factory, TINY_RUN)


@pytest.fixture
def run_copy(finished_runs, tmp_path):
    return copier(finished_runs, tmp_path, "run")


def snapshot(folder):
    """Every file's bytes and every folder (an empty one too) under `folder`; None if it does not exist."""
    if not os.path.lexists(folder):
        return None
    tree = {}
    for r, dirs, files in os.walk(folder):
        tree.update({os.path.relpath(os.path.join(r, d), folder) + "/": None for d in dirs})
        tree.update({os.path.relpath(os.path.join(r, f), folder): open(os.path.join(r, f), "rb").read()
                     for f in files})
    return tree


def refused(main, argv, folder, capsys):
    """Run a CLI in-process; assert exit 2, one line, no traceback, `folder` untouched (a folder
    that did not exist is not created)."""
    before = snapshot(folder)
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(folder) == before, "the output folder changed"
    return err
