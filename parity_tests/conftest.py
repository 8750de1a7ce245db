import numpy as np
import pytest
import torch

from tests.conftest import private_cache, real_data, real_data_cache, shared_compile_cache  # noqa: F401  (shared)


@pytest.fixture(scope="session")
def real_batch(real_data):  # noqa: F811  (the shared fixture)
    """512 normalised real training images (NHWC) and labels."""
    from experiment.data import load_cifar10
    from experiment.split import make_splits
    s = make_splits(load_cifar10(real_data), subset=640)
    return s.train_x[:512], s.train_y[:512]


@pytest.fixture(scope="session", autouse=True)
def parity_device(compute_device):
    """Run PyTorch on the GPU in --device gpu mode (JAX then uses its default, the GPU)."""
    from parity_tests import helpers
    helpers.TORCH_DEVICE = "cuda" if compute_device == "gpu" else "cpu"


@pytest.fixture(autouse=True)
def deterministic_torch():
    torch.use_deterministic_algorithms(True)
    np.random.seed(0)
