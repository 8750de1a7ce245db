"""Where and by which code a run trained, for history.json: library versions, the machine, the git
commit of the checkout (and whether it was changed)."""
import functools
import os
import platform
import subprocess

import numpy as np

CODE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout this code runs from
NOT_IN_RESULTS = ":(exclude)benchmarks/results"  # results written into the checkout do not make the code dirty


def versions(framework_versions):
    """Python's and NumPy's versions, then the framework's (a trainer's `versions`)."""
    return {"python": platform.python_version(), "numpy": np.__version__, **framework_versions}


def machine():
    return {"platform": platform.platform(), "processor": cpu_name(), "cores": os.cpu_count()}


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


def code_version_here():
    """code_version of this checkout, asked of git once per process (a run of 1,024 lanes writes
    1,024 histories)."""
    return dict(_code_version(CODE_DIR))


@functools.lru_cache(maxsize=None)
def _code_version(where):
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
