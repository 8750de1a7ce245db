"""The official CIFAR-10 python archive (`cifar-10-python.tar.gz`) or its unpacked folder."""
import codecs
import io
import os
import pickle
import tarfile

import numpy as np

from experiment.dataset import CLASSES, Cifar10
from experiment.errors import UserError
from experiment.sources.bounded import ARCHIVE_ERRORS, BATCH_LIMIT, check_member, entries, open_tar, read_regular

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
BATCHES = TRAIN_BATCHES + [TEST_BATCH]


def looks_official(path):
    if os.path.isdir(path):
        return os.path.exists(os.path.join(_batches_dir(path), TEST_BATCH))
    return os.path.basename(path).startswith("cifar-10-python")


def _batches_dir(path):
    inner = os.path.join(path, "cifar-10-batches-py")
    return inner if os.path.isdir(inner) else path


class _Refused(Exception):
    """A global the batch reader does not allow; carries its dotted name."""


# Everything a CIFAR-10 batch pickle may name: NumPy's array and dtype reconstructors, under the
# module names of NumPy 1.x (the original archive) and 2.x, and NumPy scalars. Protocol 5 pickles
# arrays through _frombuffer. Nothing here runs code of the pickle's choosing.
_NUMPY_GLOBALS = {(module, name)
                  for core in ("numpy.core", "numpy._core")
                  for module, name in ((f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar"),
                                       (f"{core}.numeric", "_frombuffer"))}
_NUMPY_GLOBALS |= {("numpy", "ndarray"), ("numpy", "dtype")}


def _latin1(text, encoding):
    """Python 3 pickles bytes at protocols 0-2 as _codecs.encode(text, 'latin1'); allow only that."""
    if encoding != "latin1":
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, bytes, str, numbers and NumPy arrays.

    pickle.loads would call any global a file names (os.system, open, ...): a crafted batch could run
    code. Refusing in find_class stops it before anything is called.
    """

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        raise _Refused(f"{module}.{name}")


def _unpickle(blob, where):
    try:
        # encoding="bytes": the original batches are Python 2 pickles, their str are bytes.
        return _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except _Refused as e:
        raise UserError(f"{where}: refused to unpickle {e} "
                        f"(a CIFAR-10 batch holds only arrays, lists, bytes and numbers)") from None
    except Exception as e:  # any other unpickling failure means a damaged batch
        raise UserError(f"{where} is not a CIFAR-10 batch ({type(e).__name__})") from None


def _rows(batch, where):
    data = batch.get(b"data")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = (f"a {data.dtype} array" if isinstance(data, np.ndarray) else
                "missing" if data is None else f"a {type(data).__name__}")
        raise UserError(f"{where}: data is {kind}, expected a uint8 array")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{where} holds rows of {data.shape[1:]} values, expected 3072 (32x32x3)")
    # Rows are channel-major (CHW); the project works in NHWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _labels(batch, where):
    labels = batch.get(b"labels")
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)
    else:
        # Checked item by item: np.asarray of nested lists could expand a small pickle into gigabytes.
        ok = isinstance(labels, list) and all(isinstance(v, (int, np.integer)) for v in labels)
    if not ok:
        raise UserError(f"{where}: labels are not a list of integers")
    try:
        return np.asarray(labels, dtype=np.int64)
    except OverflowError:
        raise UserError(f"{where}: labels outside 0..9") from None


def _decode(blob, where):
    """(NHWC uint8 images, int64 labels) of one batch; `where` names it in messages."""
    batch = _unpickle(blob, where)
    if not isinstance(batch, dict):
        raise UserError(f"{where} is not a CIFAR-10 batch (a pickled {type(batch).__name__}, not a dict)")
    x, y = _rows(batch, where), _labels(batch, where)
    if len(x) != len(y):
        raise UserError(f"{where}: {len(x)} images but {len(y)} labels")
    return x, y


def _assemble(parts, source):
    train_x = np.concatenate([parts[n][0] for n in TRAIN_BATCHES])
    train_y = np.concatenate([parts[n][1] for n in TRAIN_BATCHES])
    return Cifar10(train_x, train_y, *parts[TEST_BATCH], CLASSES, source)


def _load_folder(path):
    root = _batches_dir(path)
    parts = {}
    for name in BATCHES:
        f = os.path.join(root, name)
        if not os.path.lexists(f):
            raise UserError(f"{path}: missing {name} (expected the cifar-10-batches-py layout)")
        parts[name] = _decode(read_regular(f, BATCH_LIMIT, f), f)
    return _assemble(parts, path)


def _load_archive(path):
    """One pass over the archive; each batch is size-checked from its header, then read and decoded."""
    parts = {}
    with open_tar(path, BATCH_LIMIT) as tar:
        for m in entries(tar, path):
            if m.isfile() and os.path.basename(m.name) in BATCHES:
                where = f"{path}: {m.name}"
                check_member(m, BATCH_LIMIT, where)
                parts[os.path.basename(m.name)] = _decode(tar.extractfile(m).read(), where)
    for name in BATCHES:
        if name not in parts:
            raise UserError(f"{path}: archive has no {name} (is it cifar-10-python.tar.gz?)")
    return _assemble(parts, path)


def load_official(path):
    if os.path.isdir(path):
        return _load_folder(path)
    try:
        return _load_archive(path)
    except ARCHIVE_ERRORS as e:
        raise UserError(f"{path}: truncated or corrupt archive ({type(e).__name__}: {e})") from None


def write_official(data: Cifar10, path):
    """Write arrays in the official format (a .tar.gz or a folder); used by tests and tools."""
    def blob(x, y):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        return pickle.dumps({b"data": rows, b"labels": [int(v) for v in y]})

    chunks = np.array_split(np.arange(len(data.train_x)), 5)
    files = {n: blob(data.train_x[i], data.train_y[i]) for n, i in zip(TRAIN_BATCHES, chunks)}
    files[TEST_BATCH] = blob(data.test_x, data.test_y)
    files["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CLASSES]})
    if path.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path, "w:gz") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    else:
        root = os.path.join(path, "cifar-10-batches-py")
        os.makedirs(root, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(content)
    return path
