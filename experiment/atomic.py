"""Atomic file writes: temp file in the same folder, fsync, rename. A kill at any point leaves
either the old file or the new one, never half of one."""
import os
import tempfile


def atomic_write(path, write, binary=True):
    """Call write(f) on a temp file beside `path`, then move it into place."""
    d = os.path.dirname(os.path.abspath(path))
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
