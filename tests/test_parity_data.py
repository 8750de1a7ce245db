"""Where the parity suite keeps the real data it decodes, and when: in the cache its caller names (a
device lease names one for all its steps), else in a folder of the session, never in the user's own
cache; decoded by a process of its own while the tests that read no data run first. Each case runs
the parity suite on a small image-folder copy standing in for the real data."""
import glob
import os
import subprocess
import sys

import pytest

from experiment.sources.synthetic import make_synthetic
from tests.conftest import REPO, tar_folder, write_imagefolder

# A test that reads the real data (its 512 images), and one that reads none and comes after it in its file.
SELECTED = ["parity_tests/test_numerics.py", "-k", "eval_logits_agree and baseline or rejects_same_padding"]


@pytest.fixture(scope="module")
def image_copy(tmp_path_factory):
    """700 training and 100 test images as an image-folder tarball: enough for the 640 of real_batch."""
    folder = tmp_path_factory.mktemp("copy")
    return tar_folder(write_imagefolder(make_synthetic(700, 100, seed=5), str(folder / "imgs")),
                      str(folder / "imgs.tar.gz"))


def parity(tmp_path, image_copy, **env):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("CIFAR10_CACHE", "LENET_COMPILE_CACHE")} | dict(
        env, HOME=str(home), CIFAR10=image_copy, PYTHONPATH=REPO)
    r = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *SELECTED], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout, home


@pytest.mark.slow  # two pytest processes with JAX and PyTorch
def test_decoded_data_goes_to_the_named_cache_else_the_sessions_never_the_users(tmp_path, image_copy):
    out, home = parity(tmp_path, image_copy)
    assert not glob.glob(str(home / ".cache" / "lenet-cifar10" / "decoded-*")), "written to the user's cache"
    ran = [line.split("::")[1].split(" ")[0] for line in out.splitlines() if " PASSED" in line]
    assert ran == ["test_negative_control_structure_check_rejects_same_padding",
                   "test_eval_logits_agree_on_real_images[baseline]"], ran  # the one without data first
    named = tmp_path / "lease-cache"
    parity(tmp_path, image_copy, CIFAR10_CACHE=str(named))
    assert len(glob.glob(str(named / "decoded-*.npz"))) == 1
    assert not glob.glob(str(home / ".cache" / "lenet-cifar10" / "decoded-*"))
