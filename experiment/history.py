"""Run records: the per-epoch history.json both frameworks write, in one schema."""
import json
import os
import platform
import tempfile

import numpy as np

SCHEMA_VERSION = 1
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


def new_history(framework, model, config, seed, device, versions, data_info):
    return {
        "schema": SCHEMA_VERSION,
        "framework": framework,
        "model": model,
        "seed": seed,
        "config": config,
        "device": device,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
        "machine": {"platform": platform.platform(), "processor": cpu_name(), "cores": os.cpu_count()},
        "data": data_info,
        "epochs": [],
        "best_epoch": None,
        "best_val_loss": None,
    }


def add_epoch(history, **row):
    """Append one epoch; returns True when it has the best validation loss so far."""
    row = {k: row[k] for k in EPOCH_FIELDS}
    history["epochs"].append(row)
    best = history["best_val_loss"]
    if best is None or row["val_loss"] < best:
        history["best_epoch"], history["best_val_loss"] = row["epoch"], row["val_loss"]
        return True
    return False


def column(history, field):
    return np.array([e[field] for e in history["epochs"]])


def atomic_write_text(path, text):
    """Write via a temp file + fsync + rename, so a kill mid-write never leaves half a file."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_history(history, path):
    atomic_write_text(path, json.dumps(history, indent=1) + "\n")


def load_history(path):
    with open(path) as f:
        return json.load(f)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
