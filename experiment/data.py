"""One call from a source string to CIFAR-10 arrays, with a decoded-array cache.

Sources: a path (official archive or folder, image-folder tree or tar), `tfds`, `download`,
`synthetic[:N]`. Default: $CIFAR10, else a previously downloaded copy, else `download`.
"""
import hashlib
import os

import numpy as np

from experiment.dataset import Cifar10
from experiment.errors import UserError
from experiment.sources.download import ARCHIVE_NAME, download
from experiment.sources.imagefolder import load_imagefolder, looks_imagefolder
from experiment.sources.official import load_official, looks_official
from experiment.sources.synthetic import DEFAULT_SIZE, make_synthetic
from experiment.sources.tfds import load_tfds

SOURCES_HELP = ("a path (cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or its .tar/.tar.gz), "
                "'tfds', 'download' or 'synthetic[:N]'; default $CIFAR10, else a cached download")


def cache_dir():
    return os.environ.get("CIFAR10_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lenet-cifar10")


def default_source():
    if os.environ.get("CIFAR10"):
        return os.environ["CIFAR10"]
    cached = os.path.join(cache_dir(), ARCHIVE_NAME)
    return cached if os.path.exists(cached) else "download"


def load_cifar10(source=None, use_cache=True) -> Cifar10:
    source = source or default_source()
    if source == "synthetic" or source.startswith("synthetic:"):
        return make_synthetic(_synthetic_size(source)).validate()
    if source == "tfds":
        return load_tfds().validate()
    if source == "download":
        source = download(cache_dir())
    return _load_path(source, use_cache)


def _synthetic_size(source):
    _, _, n = source.partition(":")
    if not n:
        return DEFAULT_SIZE
    if not n.isdigit() or int(n) < 10:
        raise UserError(f"bad data source {source!r}: synthetic:N needs an integer N >= 10")
    return int(n)


def _load_path(path, use_cache):
    if not os.path.exists(path):
        raise UserError(f"data source {path!r} does not exist; expected {SOURCES_HELP}")
    if not os.access(path, os.R_OK):
        raise UserError(f"data source {path!r} is not readable")
    cached = _cache_file(path) if use_cache else None
    if cached and os.path.exists(cached):
        with np.load(cached) as z:
            return Cifar10(z["train_x"], z["train_y"], z["test_x"], z["test_y"], source=path)
    try:
        if looks_official(path):
            data = load_official(path)
        elif looks_imagefolder(path):
            data = load_imagefolder(path)
        else:
            raise UserError(f"unknown data layout at {path!r}; expected {SOURCES_HELP}")
    except OSError as e:  # a file inside that cannot be opened or read
        raise UserError(f"data source {path!r}: cannot read {e.filename or 'it'} ({e.strerror or e})") from None
    data.validate()
    if cached:
        _write_cache(cached, data)
    return data


def _cache_file(path):
    """Decoded arrays are keyed by the source's path, size and mtime: a changed file is re-read."""
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
    return os.path.join(cache_dir(), f"decoded-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz")


def _write_cache(cached, data):
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = cached + ".tmp.npz"
        np.savez(tmp, train_x=data.train_x, train_y=data.train_y, test_x=data.test_x, test_y=data.test_y)
        os.replace(tmp, cached)
    except OSError:
        pass  # a cache we cannot write only costs time on the next run
