"""One run at a time in an output folder: an exclusive lock on the folder for the whole run.

The lock is the kernel's (flock on the folder itself), so it goes away with the process however it
ends: a crash leaves no stale lock. Who holds it is written to OUT/.running while the run lasts, so
a refused run can name the holder.
"""
import json
import os
import socket
import sys
import time

from experiment.atomic import atomic_write_text
from experiment.errors import UserError

try:
    import fcntl
except ImportError:  # not on POSIX: no lock (the project runs on Linux)
    fcntl = None

HOLDER_FILE = ".running"


class FolderLock:
    def __init__(self, folder):
        self.folder, self.fd = folder, None

    def __enter__(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
            self.fd = os.open(self.folder, os.O_RDONLY)
        except OSError as e:
            raise UserError(f"cannot use output folder {self.folder} ({e.strerror or e})") from None
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self.fd)
                raise UserError(f"{self.folder} is in use by another run ({self.holder()}); wait for it to end, "
                                f"or choose another --out") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join([os.path.basename(sys.executable), *sys.argv])}
        atomic_write_text(os.path.join(self.folder, HOLDER_FILE), json.dumps(record) + "\n")
        return self

    def holder(self):
        try:
            with open(os.path.join(self.folder, HOLDER_FILE)) as f:
                h = json.load(f)
            return f"pid {h['pid']} on {h['host']}, since {h['since']}: {h['command']}"
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return "its holder did not say who it is"

    def __exit__(self, *exc):
        try:
            os.remove(os.path.join(self.folder, HOLDER_FILE))
        except OSError:
            pass
        os.close(self.fd)  # releases the lock
        return False
