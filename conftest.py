"""Suite-wide options. `--device gpu` (or PARITY_DEVICE=gpu) runs the parity suite on a GPU at the
project's default precision, 'highest': float32 matmuls and convolutions in full float32 in both
frameworks (JAX at 'highest', PyTorch's cuBLAS and cuDNN without TF32)."""
import os

import pytest

# cuBLAS reads this when CUDA starts; deterministic mode (torch.use_deterministic_algorithms) needs it.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pytest_addoption(parser):
    parser.addoption("--device", choices=("cpu", "gpu"), default=os.environ.get("PARITY_DEVICE", "cpu"),
                     help="where the parity suite runs (default cpu)")
    # A flag, and the JSON file an option of its own: an optional value would take the test path
    # that follows it (`--costs parity_tests/test_x.py`) as the file to write.
    parser.addoption("--costs", action="store_true",
                     help="count each test's XLA compiles, PyTorch trainers and steps (parity_tests/costs.py); "
                          "a table at the end")
    parser.addoption("--costs-json", metavar="FILE", default=None,
                     help="--costs, and every count written to FILE as JSON")


def pytest_configure(config):
    import jax
    if config.getoption("--device") == "gpu":
        from torch_ref.precision import set_precision
        jax.config.update("jax_default_matmul_precision", "highest")
        set_precision("highest")
    else:  # CPU mode stays on the CPU even on a machine with a GPU
        jax.config.update("jax_platforms", "cpu")
    json_file = config.getoption("--costs-json")
    if json_file and json_file.endswith(".py"):
        raise pytest.UsageError(f"--costs-json {json_file}: a test file, not a JSON file to write "
                                f"(the counts go to FILE.json; --costs alone prints them)")
    if config.getoption("--costs") or json_file:
        from parity_tests import costs
        costs.install(config)
        config.pluginmanager.register(costs, "parity-costs")


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


# $CIFAR10 may be relative to the checkout (.ci/run sets ../shared/...): pin it before any test moves.
if os.environ.get("CIFAR10"):
    os.environ["CIFAR10"] = os.path.abspath(os.environ["CIFAR10"])


@pytest.fixture(autouse=True)
def outside_the_checkout(tmp_path, monkeypatch):
    """Every test runs in its own empty folder: a command's default output folder (runs/<framework>)
    then lands there, never in the user's checkout, whose runs no test may read or change."""
    monkeypatch.chdir(tmp_path)


def pytest_unconfigure(config):
    """Real-data tests skipped for want of the data are said in the run's last line, after pytest's own
    summary, with the command that runs them (pytest's skip lines are easy to miss in a long run)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    from tests.conftest import real_data_skips
    skipped = real_data_skips(reporter.stats)
    if skipped:
        reporter.write_line(
            f"{len(skipped)} tests that need the real CIFAR-10 were skipped: no data found ($CIFAR10 unset or "
            "missing, no path remembered by `make train`, no ../shared/datasets copy beside the checkout). "
            "Run them with: CIFAR10=/path/to/cifar-10-python.tar.gz make test", yellow=True, bold=True)
