"""The official CIFAR-10 python archive (`cifar-10-python.tar.gz`) or its unpacked folder."""
import io
import os
import pickle
import tarfile
import zlib

import numpy as np

from experiment.dataset import CLASSES, Cifar10
from experiment.errors import UserError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"


def looks_official(path):
    if os.path.isdir(path):
        return os.path.exists(os.path.join(_batches_dir(path), TEST_BATCH))
    return os.path.basename(path).startswith("cifar-10-python")


def _batches_dir(path):
    inner = os.path.join(path, "cifar-10-batches-py")
    return inner if os.path.isdir(inner) else path


def _decode(blob, name, source):
    try:
        d = pickle.loads(blob, encoding="bytes")  # the official format is a pickle
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as e:  # any unpickling failure means a damaged batch
        raise UserError(f"{source}: {name} is not a CIFAR-10 batch ({type(e).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{source}: {name} holds rows of {data.shape[1:]} values, expected 3072 (32x32x3)")
    # Rows are channel-major (CHW); the project works in NHWC.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _read_batches(read, source):
    parts = {}
    for name in TRAIN_BATCHES + [TEST_BATCH]:
        parts[name] = _decode(read(name), name, source)
    train_x = np.concatenate([parts[n][0] for n in TRAIN_BATCHES])
    train_y = np.concatenate([parts[n][1] for n in TRAIN_BATCHES])
    return Cifar10(train_x, train_y, *parts[TEST_BATCH], CLASSES, source)


def load_official(path):
    if os.path.isdir(path):
        root = _batches_dir(path)

        def read(name):
            f = os.path.join(root, name)
            if not os.path.exists(f):
                raise UserError(f"{path}: missing {name} (expected the cifar-10-batches-py layout)")
            with open(f, "rb") as fh:
                return fh.read()

        return _read_batches(read, path)

    try:
        with tarfile.open(path, "r:*") as tar:
            members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}

            def read(name):
                if name not in members:
                    raise UserError(f"{path}: archive has no {name} (is it cifar-10-python.tar.gz?)")
                return tar.extractfile(members[name]).read()

            return _read_batches(read, path)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
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
