import numpy as np
import pytest
import torch

from tests.conftest import private_cache, real_data, real_data_cache, shared_compile_cache  # noqa: F401  (shared)


@pytest.fixture(scope="session")
def real_batch(real_data):  # noqa: F811  (the shared fixture)
    """512 normalised real training images (NHWC) and labels."""
    from experiment.data import load_cifar10
    from experiment.split import make_splits
    from parity_tests.tolerances import REAL_BATCH_IMAGES
    s = make_splits(load_cifar10(real_data), subset=640)
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
