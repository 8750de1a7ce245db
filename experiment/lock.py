"""One run at a time in an output folder: an exclusive lock on the folder for the whole run.

The lock is the kernel's (flock on the folder itself), so it goes away with the process however it
ends: a crash leaves no stale lock. Who holds it is written to OUT/.running while the run lasts, so
a refused run can name the holder.

The folders a run creates before it starts (OUT itself, its lanes' folders) are noted in a
NewFolders; a run refused or stopped before it starts removes them again, so it leaves nothing
behind.
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


class NewFolders:
    """Folders made by this run, until it keeps them (once it has started, they are its run)."""

    def __init__(self):
        self.made = []

    def make(self, path):
        """os.makedirs(path), noting every folder it creates."""
        missing, p = [], os.path.abspath(path)
        while not os.path.lexists(p) and p != os.path.dirname(p):
            missing.append(p)
            p = os.path.dirname(p)
        try:
            os.makedirs(path, exist_ok=True)
        finally:
            self.made += [d for d in reversed(missing) if os.path.isdir(d)]

    def keep(self):
        self.made = []

    def remove(self):
        """Remove the folders made, deepest first, each only if it is still empty."""
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        self.made = []


class FolderLock:
    """Use as a context manager. `folders` (a NewFolders) notes OUT if the lock creates it; leaving
    the lock, or cleanup(), removes what it still holds."""

    def __init__(self, folder, folders=None):
        self.folder, self.fd, self.folders = folder, None, folders or NewFolders()

    def __enter__(self):
        try:
            self.folders.make(self.folder)
            self.fd = os.open(self.folder, os.O_RDONLY)
        except OSError as e:
            self.folders.remove()
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

    def cleanup(self):
        """What leaving the lock removes: the holder file, and folders made for a run that did not
        start. Also what a run stopped at once does before it exits."""
        try:
            os.remove(os.path.join(self.folder, HOLDER_FILE))
        except OSError:
            pass
        self.folders.remove()

    def __exit__(self, *exc):
        self.cleanup()
        os.close(self.fd)  # releases the lock
        return False
