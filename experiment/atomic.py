"""Atomic file writes: temp file in the same folder, fsync, rename. A kill at any point leaves
either the old file or the new one, never half of one."""
import os
import tempfile

from experiment.errors import UserError


def atomic_write(path, write, binary=True):
    """Call write(f) on a temp file beside `path`, then move it into place. A failed write (full
    disk, read-only folder) is a UserError that says the previous file is unchanged."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        _write_and_replace(d, path, write, binary)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror or e}); the previous file, if any, is unchanged") from None


def _write_and_replace(d, path, write, binary):
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), binary=False)
