"""Every data source returns the same CIFAR-10 arrays; the cache is fast and keyed correctly."""
import os
import time

import numpy as np
import pytest

from experiment.data import load_cifar10
from experiment.errors import UserError
from experiment.sources.official import write_official
from tests.conftest import tar_folder, write_imagefolder


def assert_same(a, b):
    for f in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


@pytest.mark.parametrize("name", ["cifar-10-python.tar.gz", "unpacked"])
def test_official_format(tiny, tmp_path, name):
    path = write_official(tiny, str(tmp_path / name))
    assert_same(load_cifar10(path), tiny)


def test_official_unpacked_inner_folder(tiny, tmp_path):
    write_official(tiny, str(tmp_path / "x"))
    assert_same(load_cifar10(str(tmp_path / "x" / "cifar-10-batches-py")), tiny)


def test_imagefolder_directory_and_tar(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    from_dir = load_cifar10(root)
    from_tar = load_cifar10(tar_folder(root, str(tmp_path / "imgs.tar.gz")))
    assert_same(from_dir, from_tar)
    # Folders are read in class-then-file order; PNG is lossless, so the images are the tiny set's.
    order = np.lexsort((np.arange(len(tiny.train_y)), tiny.train_y))
    np.testing.assert_array_equal(from_dir.train_x, tiny.train_x[order])
    np.testing.assert_array_equal(from_dir.train_y, tiny.train_y[order])


def test_synthetic_sizes_and_determinism():
    a, b = load_cifar10("synthetic:300"), load_cifar10("synthetic:300")
    assert a.train_x.shape == (300, 32, 32, 3) and a.train_x.dtype == np.uint8
    assert_same(a, b)
    assert set(np.unique(a.train_y)) == set(range(10))


def test_cache_is_fast_and_keyed_by_mtime(tiny, tmp_path):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    load_cifar10(path)
    cache = os.listdir(os.environ["CIFAR10_CACHE"])
    assert len(cache) == 1
    t0 = time.perf_counter()
    assert_same(load_cifar10(path), tiny)
    assert time.perf_counter() - t0 < 1.0
    # A changed file gets a new cache entry rather than stale arrays.
    other = tiny.train_x.copy()
    other[0] = 0
    tiny.train_x = other
    time.sleep(0.01)
    write_official(tiny, path)
    assert load_cifar10(path).train_x[0].max() == 0
    assert len(os.listdir(os.environ["CIFAR10_CACHE"])) == 2


def test_default_source_is_env_var(tiny, tmp_path, monkeypatch):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    monkeypatch.setenv("CIFAR10", path)
    assert_same(load_cifar10(), tiny)


def test_tfds_fails_fast_and_names_offline_options(monkeypatch):
    import experiment.sources.tfds as tfds_source
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="--data"):
        try:
            import tensorflow_datasets  # noqa: F401  (installed: offline check must still be fast)
            tfds_source.load_tfds(host="unreachable.invalid")
        except ImportError:
            tfds_source.load_tfds()
    assert time.perf_counter() - t0 < 10


@pytest.mark.slow  # reads all 60,000 real images
def test_real_shared_copy(real_data):
    data = load_cifar10(real_data)
    assert data.train_x.shape == (50000, 32, 32, 3) and data.test_x.shape == (10000, 32, 32, 3)
    assert np.bincount(data.train_y).tolist() == [5000] * 10
    assert np.bincount(data.test_y).tolist() == [1000] * 10
    # The JPEG copy's published test-set channel means.
    np.testing.assert_allclose(data.test_x.mean(axis=(0, 1, 2)) / 255, [0.4941, 0.4851, 0.4504], atol=2e-4)
