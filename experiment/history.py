"""Run records: the per-epoch history.json both frameworks write, in one schema."""
import functools
import json
import os
import platform
import subprocess
import time

import numpy as np

from experiment.atomic import atomic_write_text
from experiment.metrics import EPOCH_FIELDS

SCHEMA_VERSION = 1


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
        "code": dict(current_code(CODE_DIR)),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": data_info,
        "epochs": [],
        "best_epoch": None,
        "best_val_loss": None,
    }


def add_epoch(history, row):
    """Append one epoch; returns True when it has the best validation loss so far. A field the
    schema (experiment.metrics) does not know, or one it lacks, is an error, never dropped."""
    if set(row) != set(EPOCH_FIELDS):
        raise ValueError(f"history row fields {sorted(row)} differ from {list(EPOCH_FIELDS)}")
    row = {k: row[k] for k in EPOCH_FIELDS}
    history["epochs"].append(row)
    best = history["best_val_loss"]
    if best is None or row["val_loss"] < best:
        history["best_epoch"], history["best_val_loss"] = row["epoch"], row["val_loss"]
        return True
    return False


def column(history, field):
    return np.array([e[field] for e in history["epochs"]])


def save_history(history, path):
    atomic_write_text(path, json.dumps(history, indent=1) + "\n")


def load_history(path):
    with open(path) as f:
        return json.load(f)


CODE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout this code runs from
NOT_IN_RESULTS = ":(exclude)benchmarks/results"  # results written into the checkout do not make the code dirty


def code_version(where=CODE_DIR):
    """The git commit of the checkout the code runs from and whether its tracked files (results
    aside) differ from it: {"commit": None, "dirty": None} where that cannot be told (no git, not a
    checkout). Never raises: a run is not failed for its provenance."""
    def git(*args):
        return subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    try:
        head = git("rev-parse", "--verify", "HEAD")
        commit = head.stdout.strip()
        if head.returncode != 0 or len(commit) != 40:
            return {"commit": None, "dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".", NOT_IN_RESULTS)
        return {"commit": commit, "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}
    except (OSError, ValueError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.lru_cache(maxsize=None)
def current_code(where):
    """code_version, asked of git once per process and folder (a run of 1,024 lanes writes 1,024
    histories)."""
    return tuple(code_version(where).items())


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
