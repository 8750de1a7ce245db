"""Every bad data input gets a one-line UserError naming the problem."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from experiment.data import load_cifar10
from experiment.errors import UserError
from experiment.sources.official import write_official
from tests.conftest import tar_folder, write_imagefolder


def error_of(source):
    with pytest.raises(UserError) as e:
        load_cifar10(source)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_path(tmp_path):
    assert "does not exist" in error_of(str(tmp_path / "nope.tar.gz"))


def test_unknown_layout(tmp_path):
    p = tmp_path / "data.bin"
    p.write_bytes(b"\0" * 100)
    assert "unknown data layout" in error_of(str(p))


def test_empty_folder(tmp_path):
    assert "unknown data layout" in error_of(str(tmp_path))


def test_a_folder_without_train_or_test_is_not_walked(tmp_path, monkeypatch):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.setattr("os.walk", lambda *a, **k: (_ for _ in ()).throw(AssertionError("walked")))
    assert "unknown data layout" in error_of(str(tmp_path))


def test_a_train_folder_without_images(tmp_path):
    (tmp_path / "train").mkdir()
    assert "no images under train" in error_of(str(tmp_path))


def test_truncated_official_archive(tiny, tmp_path):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[: len(blob) // 2])
    assert "truncated or corrupt" in error_of(path)


def test_truncated_imagefolder_tar(tiny, tmp_path):
    path = tar_folder(write_imagefolder(tiny, str(tmp_path / "imgs")), str(tmp_path / "imgs.tar.gz"))
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[: len(blob) // 2])
    assert "truncated or corrupt" in error_of(path)


def test_wrong_image_size(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(os.path.join(root, "train", "cat", "big.png"))
    assert "is 28x28, expected 32x32" in error_of(root)


def test_corrupt_image(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    open(os.path.join(root, "test", "dog", "bad.png"), "wb").write(b"not a png")
    assert "cannot decode image" in error_of(root)


def test_missing_class(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    shutil.rmtree(os.path.join(root, "train", "frog"))
    assert "has no images of class frog" in error_of(root)


def test_extra_class(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    shutil.copytree(os.path.join(root, "train", "cat"), os.path.join(root, "train", "tiger"))
    assert "unknown class folder(s) tiger" in error_of(root)


def test_official_batch_with_wrong_rows(tiny, tmp_path):
    tiny.train_x = tiny.train_x[:, :16]  # 16x32 images: rows of 1536 values
    tiny.test_x = tiny.test_x[:, :16]
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    assert "expected 3072" in error_of(path)


def test_bad_synthetic_size():
    assert "synthetic:N" in error_of("synthetic:abc")
