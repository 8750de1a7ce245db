import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import (  # noqa: F401  (shared fixtures)
    REPO,
    one_torch_thread,
    private_cache,
    real_data,
    real_data_cache,
    real_data_path,
    shared_compile_cache,
)

HERE = os.path.dirname(os.path.abspath(__file__))


def needs_real_data(item):
    return "real_data" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    """The parity tests that read no real data run first (in their order), while `decoding` fills
    the data cache beside them; other tests of the session keep their places."""
    slots = [i for i, item in enumerate(items) if str(item.path).startswith(HERE + os.sep)]
    ordered = sorted((items[i] for i in slots), key=needs_real_data)  # stable: False first
    for i, item in zip(slots, ordered):
        items[i] = item


@pytest.fixture(scope="session", autouse=True)
def decoding(request, real_data_cache):  # noqa: F811  (the shared fixture)
    """A process of its own decodes the real data into the cache from the session's start, when a
    selected test reads it: the first tests, which read none, run meanwhile (on a GPU mostly
    compiling), so little of the decoding is waited for. None when nothing is to be decoded."""
    path = real_data_path()
    if path is None or not any(needs_real_data(item) for item in request.session.items):
        yield None
        return
    code = "import sys; from experiment.data import load_cifar10; load_cifar10(sys.argv[1])"
    env = dict(os.environ, CIFAR10_CACHE=real_data_cache,
               PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-c", code, path], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield proc
    if proc.poll() is None:  # the session stopped before any test read the data
        proc.kill()
    proc.wait()


@pytest.fixture(scope="session")
def cifar10(real_data, real_data_cache, decoding):  # noqa: F811  (the shared fixture)
    """The real CIFAR-10 arrays, read once a session for every test that reads them in this
    process, from the cache `decoding` filled (a failed decoding is done again here, where its
    error is reported); the commands the tests run read the same cache."""
    from experiment.data import load_cifar10
    if decoding is not None:
        decoding.wait()
    with pytest.MonkeyPatch.context() as mp:  # a session fixture runs before each test's own cache is set
        mp.setenv("CIFAR10_CACHE", real_data_cache)
        return load_cifar10(real_data)


@pytest.fixture(scope="session")
def curve_splits(cifar10):
    """The learning curves' 10,000 images (8,000 train, 2,000 val) and the normalised test set."""
    from experiment.split import make_splits
    from parity_tests.tolerances import CURVE_IMAGES
    return make_splits(cifar10, subset=CURVE_IMAGES)


@pytest.fixture(scope="session")
def real_batch(cifar10):
    """512 normalised real training images (NHWC) and labels."""
    from experiment.split import make_splits
    from parity_tests.tolerances import REAL_BATCH_IMAGES
    s = make_splits(cifar10, subset=640)
    return s.train_x[:REAL_BATCH_IMAGES], s.train_y[:REAL_BATCH_IMAGES]


@pytest.fixture(scope="session", autouse=True)
def parity_compile_cache(shared_compile_cache):  # noqa: F811  (the shared fixture)
    """JAX's persistent compilation cache on from the first test (the session's own folder), not
    only once a trainer turns it on: a program whose compiled form another test already has is
    loaded, not compiled again. E.g. the DropoutModel's eval forward and its gradient are the
    BaseLine's program to the op (dropout is off in eval mode)."""
    from flax_impl.compilation import enable_cache
    enable_cache()


@pytest.fixture(scope="session", autouse=True)
def parity_device(compute_device):
    """Run PyTorch on the GPU in --device gpu mode (JAX then uses its default, the GPU)."""
    from parity_tests import helpers
    helpers.TORCH_DEVICE = "cuda" if compute_device == "gpu" else "cpu"


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    np.random.seed(0)


@pytest.fixture(scope="session", autouse=True)
def torch_on_one_thread_all_session():
    with one_torch_thread():
        yield
