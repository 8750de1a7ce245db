"""Reading untrusted files with limits: regular files only, sizes refused before they are read.

A data path is input like any other: a folder may hold a FIFO or a link to /dev/zero, and an archive
header may declare any size. Every limit below is a few times what real CIFAR-10 needs.
"""
import bz2
import contextlib
import gzip
import lzma
import os
import stat
import tarfile
import zlib
from collections import namedtuple

from experiment.errors import UserError

Limit = namedtuple("Limit", "bytes why")

# 32x32x3 pixels are 3 KB; a CIFAR-10 PNG or JPEG is a few KB. 1 MiB leaves room for metadata chunks.
IMAGE_LIMIT = Limit(1 << 20, "a CIFAR-10 image file is a few KB")
# An official batch is 10,000 rows of 3,072 bytes plus labels and file names: about 31 MB.
BATCH_LIMIT = Limit(64 << 20, "an official CIFAR-10 batch is about 31 MB")
# The official archive unpacks to about 186 MB, the 60,000 images as a tar of PNGs to about 300 MB.
# Past this an archive is not CIFAR-10, and reading on would only cost time (a gzip of zeros is tiny).
ARCHIVE_LIMIT = Limit(1 << 30, "CIFAR-10's archives unpack to under 300 MB")
# CIFAR-10 has 60,000 images; tarfile keeps every entry's header in memory (about 0.5 KB each).
ARCHIVE_MAX_ENTRIES = 200_000

# Opening a FIFO for reading waits for a writer; non-blocking, the open returns and fstat tells.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def mib(n):
    return f"{n / (1 << 20):g} MiB"


def too_large(shown, size, limit, verb="is"):
    return UserError(f"{shown} {verb} {size:,} bytes, over the {mib(limit.bytes)} limit ({limit.why})")


def check_regular(st, shown):
    """Only regular files are data: a FIFO would block a read, a device (/dev/zero) never ends."""
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        raise UserError(f"{shown} is {kind}, not a regular file")


def open_regular(path, shown):
    """Open `path` for reading without blocking; refuse anything but a regular file (links followed)."""
    check_regular(os.stat(path), shown)  # a socket cannot even be opened: name it first
    f = os.fdopen(os.open(path, _OPEN_FLAGS), "rb")
    try:
        check_regular(os.fstat(f.fileno()), shown)  # it may have been swapped since the stat
    except UserError:
        f.close()
        raise
    return f


def read_regular(path, limit, shown):
    """The bytes of a regular file no larger than `limit`; its size is checked before reading."""
    with open_regular(path, shown) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit.bytes:
            raise too_large(shown, size, limit)
        blob = f.read(limit.bytes + 1)  # the file may grow after the fstat
    if len(blob) > limit.bytes:
        raise too_large(shown, len(blob), limit, "grew to over")
    return blob


def check_member(member, limit, shown):
    """Refuse an archive member from the size its header declares, before reading any of it."""
    if member.size > limit.bytes:
        raise too_large(shown, member.size, limit, "declares")


class _Capped:
    """The unpacked stream tarfile reads: refuses one read over `read_limit` (a header may declare
    any length for a long name or pax record, and tarfile reads it at once) and any position past
    ARCHIVE_LIMIT (an archive that unpacks forever)."""

    def __init__(self, f, path, read_limit):
        self.f, self.path, self.read_limit = f, path, read_limit

    def read(self, n=-1):
        if n is None or n < 0 or n > self.read_limit.bytes:
            raise UserError(f"{self.path}: a tar header declares {n:,} bytes of metadata, over the "
                            f"{mib(self.read_limit.bytes)} limit for one record of a CIFAR-10 archive")
        self._check_position(self.f.tell() + n)
        return self.f.read(n)

    def seek(self, pos, whence=os.SEEK_SET):
        if whence == os.SEEK_SET:
            self._check_position(pos)
        return self.f.seek(pos, whence)

    def tell(self):
        return self.f.tell()

    def _check_position(self, pos):
        if pos > ARCHIVE_LIMIT.bytes:
            raise UserError(f"{self.path}: archive unpacks to over {mib(ARCHIVE_LIMIT.bytes)} "
                            f"({ARCHIVE_LIMIT.why}); not read further")


def _unpacked(raw):
    """The decompressed stream of a tar, .tar.gz, .tar.bz2 or .tar.xz, told by its first bytes."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


@contextlib.contextmanager
def open_tar(path, read_limit):
    """A TarFile over `path` whose reads are capped (see _Capped); iterate it with `entries`."""
    with open_regular(path, path) as raw, _unpacked(raw) as stream:
        with tarfile.open(fileobj=_Capped(stream, path, read_limit), mode="r:") as tar:
            yield tar


def entries(tar, path):
    """The members of `tar`, one at a time, refusing an archive with more than CIFAR-10 could need."""
    for i, member in enumerate(tar, 1):
        if i > ARCHIVE_MAX_ENTRIES:
            raise UserError(f"{path}: archive has over {ARCHIVE_MAX_ENTRIES:,} entries "
                            f"(CIFAR-10 has 60,000 images); not read further")
        yield member


# What a damaged or hostile archive can raise from inside tarfile and the decompressors.
ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, IndexError, zlib.error, lzma.LZMAError)
