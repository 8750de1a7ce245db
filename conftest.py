"""Suite-wide options. `--device gpu` (or PARITY_DEVICE=gpu) runs the parity suite on a GPU in
float32 without TF32: JAX matmuls at 'highest' precision, PyTorch's TF32 switched off."""
import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--device", choices=("cpu", "gpu"), default=os.environ.get("PARITY_DEVICE", "cpu"),
                     help="where the parity suite runs (default cpu)")


def pytest_configure(config):
    import jax
    if config.getoption("--device") == "gpu":
        import torch
        jax.config.update("jax_default_matmul_precision", "highest")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:  # CPU mode stays on the CPU even on a machine with a GPU
        jax.config.update("jax_platforms", "cpu")


@pytest.fixture(scope="session")
def compute_device(pytestconfig):
    """'cpu' or 'gpu'; GPU mode is skipped cleanly where neither framework sees a GPU."""
    device = pytestconfig.getoption("--device")
    if device == "gpu":
        import jax
        import torch
        if not torch.cuda.is_available() or jax.default_backend() != "gpu":
            pytest.skip("--device gpu: no GPU visible to both PyTorch and JAX")
    return device
