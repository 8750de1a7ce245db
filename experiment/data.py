"""One call from a source string to CIFAR-10 arrays, with a decoded-array cache.

Sources: a path (official archive or folder, image-folder tree or tar), `tfds`, `download`,
`synthetic[:N]`. Default: $CIFAR10, else a previously downloaded copy, else `download`.
"""
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
import urllib.parse

import numpy as np

from experiment.dataset import Cifar10
from experiment.errors import UserError
from experiment.sources.download import ARCHIVE_NAME, OFFLINE_HINT, URL, download, resolves
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


def is_named(source):
    """Whether a data source is a name (synthetic[:N], tfds, download), not a path; a loaded data
    set's `source` says 'tfds:cifar10' for tfds."""
    return source in ("synthetic", "tfds", "download") or source.startswith(("synthetic:", "tfds:"))


def check_source(source=None):
    """Refuse, without reading it, a data source that is not there or of no known kind: what a
    command checks before it creates anything (decoding it may still find faults)."""
    if source == "":
        raise UserError(f"the data source is empty; expected {SOURCES_HELP}")
    source = source or default_source()
    if source == "synthetic" or source.startswith("synthetic:"):
        _synthetic_size(source)
    elif source == "tfds":
        if importlib.util.find_spec("tensorflow_datasets") is None:
            load_tfds()  # says it is not installed, and what to do instead
    elif source == "download":
        if not os.path.exists(os.path.join(cache_dir(), ARCHIVE_NAME)):
            host = urllib.parse.urlparse(URL).hostname or ""
            if not resolves(host):
                raise UserError(f"cannot resolve {host} to download CIFAR-10; {OFFLINE_HINT}")
    else:
        _check_path(source)


def load_cifar10(source=None, use_cache=True) -> Cifar10:
    if source == "":
        raise UserError(f"the data source is empty; expected {SOURCES_HELP}")
    source = source or default_source()
    if source == "synthetic" or source.startswith("synthetic:"):
        return make_synthetic(_synthetic_size(source)).validate()
    if source == "tfds":
        return load_tfds().validate()
    if source == "download":
        source = download(cache_dir())
    return _load_path(source, use_cache)


# Twice CIFAR-10's 50,000 training images: enough for any test or benchmark, and its arrays
# (3 KB an image, 12 KB once normalised) stay a few GB.
SYNTHETIC_MAX = 100_000


def _synthetic_size(source):
    _, _, n = source.partition(":")
    if not n:
        return DEFAULT_SIZE
    if not n.isdigit() or not 10 <= int(n) <= SYNTHETIC_MAX:
        raise UserError(f"bad data source {source!r}: synthetic:N needs an integer N in [10, {SYNTHETIC_MAX:,}]")
    return int(n)


def _check_path(path):
    if not os.path.exists(path):
        raise UserError(f"data source {path!r} does not exist; expected {SOURCES_HELP}")
    if not os.access(path, os.R_OK):
        raise UserError(f"data source {path!r} is not readable")
    if not (looks_official(path) or looks_imagefolder(path)):  # before anything walks or reads it
        raise UserError(f"unknown data layout at {path!r}; expected {SOURCES_HELP}")


def _load_path(path, use_cache):
    _check_path(path)
    cached = _cache_file(path) if use_cache else None
    data = _read_cache(cached, path) if cached else None
    if data is not None:
        return data
    data = _decode_source(path).validate()
    if cached:
        _write_cache(cached, data)
    return data


def _decode_source(path):
    try:
        if looks_official(path):
            return load_official(path)
        if looks_imagefolder(path):
            return load_imagefolder(path)
    except OSError as e:  # a file inside that cannot be opened or read
        raise UserError(f"data source {path!r}: cannot read {e.filename or 'it'} ({e.strerror or e})") from None
    raise UserError(f"unknown data layout at {path!r}; expected {SOURCES_HELP}")


def _warn(message):
    print(f"warning: {message}", file=sys.stderr)


# The decoded-array cache. An entry is a plain .npz (no pickles) named by a hash of what the source
# was when it was decoded; it is checked like any input when read, and written atomically.

CACHE_KEYS = ("train_x", "train_y", "test_x", "test_y")
STALE_TMP_S = 3600  # a temporary file this old belongs to a writer that was killed


def _cache_file(path):
    """Decoded arrays are keyed by the source's path, size and mtime, and for a folder by every
    file's name, size and mtime (a folder's own mtime misses changes below its top level)."""
    st = os.stat(path)
    key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
    if os.path.isdir(path):
        key += "|" + _folder_listing(path)
    digest = hashlib.sha1(key.encode(errors="surrogateescape")).hexdigest()[:16]
    return os.path.join(cache_dir(), f"decoded-{digest}.npz")


def _folder_listing(root):
    """A digest of every file under `root` (relative name, size, mtime): one walk, one stat each."""
    h = hashlib.sha1()
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for f in sorted(files):
            try:
                st = os.stat(os.path.join(dirpath, f))
                sig = (st.st_size, st.st_mtime_ns)
            except OSError:  # a dangling link: reading it will say so
                sig = None
            h.update(repr((rel_dir, f, sig)).encode(errors="surrogateescape"))  # repr: no two lists alike
    return h.hexdigest()


def _read_cache(cached, path):
    """The cached arrays if the entry is sound; None (with a warning if it is damaged) otherwise."""
    if not os.path.lexists(cached):
        return None
    try:
        data = _load_npz(cached)
        data.validate()
    except Exception as e:  # anything wrong with a cache entry only means decoding again
        reason = str(e) if isinstance(e, UserError) else _short(e)
        _warn(f"decoded-array cache {cached} is damaged ({reason}); decoding {path} again")
        return None
    data.source = path
    return data


def _short(e):
    """'Type: first line of the message', at most 120 characters: warnings stay one line."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}"[:120] if text else type(e).__name__


def _load_npz(cached):
    if not os.path.isfile(cached):
        raise ValueError("not a regular file")
    z = np.load(cached, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive")
    with z:
        return Cifar10(*(z[k] for k in CACHE_KEYS), source="cached arrays")


def _write_cache(cached, data):
    """Write to a temporary file beside the entry, then rename: a reader never sees half an entry."""
    folder = os.path.dirname(cached)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        _remove_stale_tmp(cached)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(cached) + ".", suffix=".tmp")
        # No fsync: an entry cut short by a power loss is caught as damaged when read.
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: getattr(data, k) for k in CACHE_KEYS})
        os.replace(tmp, cached)
        tmp = None
    except OSError as e:  # reading worked; only the next run pays
        reason = "not a folder" if os.path.exists(folder) and not os.path.isdir(folder) else e.strerror or e
        _warn(f"cannot write the decoded-array cache in {folder} ({reason}); continuing without it")
    finally:
        if tmp:  # interrupted or failed: leave no temporary file behind
            _remove_quietly(tmp)


def _remove_stale_tmp(cached):
    prefix = os.path.basename(cached) + "."
    folder = os.path.dirname(cached)
    for name in os.listdir(folder):
        if name.startswith(prefix) and name.endswith(".tmp"):
            full = os.path.join(folder, name)
            try:
                if time.time() - os.stat(full).st_mtime > STALE_TMP_S:
                    os.remove(full)
            except OSError:
                pass  # another process got there first


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
