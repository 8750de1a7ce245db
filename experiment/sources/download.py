"""`download`: fetch the official python archive with the standard library, verify its md5."""
import hashlib
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

from experiment.errors import UserError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TIMEOUT_S = 5.0  # per connect/read; offline users should hear so in seconds, not minutes
OFFLINE_HINT = ("no network? pass --data with a local cifar-10-python.tar.gz, a cifar-10-batches-py/ "
                "folder or an image-folder tree/tar, or set CIFAR10 to one")


def md5sum(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolves(host, timeout=TIMEOUT_S):
    """True if `host` resolves within `timeout` (getaddrinfo itself has no timeout)."""
    result = []
    t = threading.Thread(target=lambda: result.append(_try_resolve(host)), daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _try_resolve(host):
    try:
        return bool(socket.getaddrinfo(host, None))
    except OSError:
        return False


def download(cache_dir, url=URL, md5=MD5, timeout=TIMEOUT_S):
    """Return the path of the verified archive in `cache_dir`, fetching it if absent."""
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:  # CIFAR10_CACHE names a file, or a place that cannot be written
        reason = "not a folder" if os.path.exists(cache_dir) else e.strerror or e
        raise UserError(f"cannot create the download folder {cache_dir} ({reason}); "
                        f"set CIFAR10_CACHE to a writable folder, or pass --data with a local copy") from None
    dest = os.path.join(cache_dir, ARCHIVE_NAME)
    if os.path.exists(dest) and md5sum(dest) == md5:
        return dest
    host = urllib.parse.urlparse(url).hostname or ""
    if not resolves(host, timeout):
        raise UserError(f"cannot resolve {host} to download CIFAR-10; {OFFLINE_HINT}")
    tmp = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"download of {url} failed ({reason}); {OFFLINE_HINT}") from None
    got = md5sum(tmp)
    if got != md5:
        os.remove(tmp)
        raise UserError(f"download of {url} has md5 {got}, expected {md5}: corrupt or wrong file, not kept")
    os.replace(tmp, dest)
    return dest
