"""What a lease brings back, and how the next lease reads it.

results.tar.gz: every step's files but checkpoints and caches (histories, run.json, summaries, logs,
steps.json). state.tar.gz.1 (to .3): what the next lease resumes from and reuses: the train states and
best checkpoints of the training steps it continues (the test evaluation reads the checkpoints at the end;
about 1 MB a lane), then as much of JAX's persistent compile cache as fits (its programs load instead of
compiling again). At most three parts of at most 15 MiB, so that with the report, the log, results.tar.gz,
the speed table and the parity log a lease brings back at most 8 files, 64 MiB in all; a training folder whose files do
not fit is trained from its start next lease, and the log says so. Nothing else of a lease's work folder
travels: the decoded data (too large) is decoded again.
"""
import glob
import io
import os
import shutil
import stat
import tarfile
import zlib
from pathlib import PurePosixPath

from benchmarks.device.cli import BadInput

PART_BYTES, MAX_PARTS = 15 * 2**20, 3  # with REPORT.md, the log, results.tar.gz, speed.md, parity.log: 8 files
STATE_BYTES = PART_BYTES * MAX_PARTS
# What one tarball may unpack to: a lease brings back at most 64 MiB, compressed; its results and train
# states unpack to a few hundred MiB. A tarball whose headers say more (a gzip bomb) is refused before
# anything is written.
UNPACK_BYTES, UNPACK_MEMBERS = 2 * 2**30, 100_000
STATE_PER_LANE = 2**20  # a Flax or PyTorch lane's train state (params and Adam's two moments) and best checkpoint
STATE = "state.tar.gz"
SKIP = (".msgpack", ".pt", ".tmp")
EVENTS = "tfevents"
CACHE = ".cache"  # the lease's caches, under its work folder: data/ (decoded) and jax/ (compiled programs)
COMPILE_CACHE = os.path.join(CACHE, "jax")


def atomic_bytes(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def pack_results(work, out):
    def keep(info):
        parts = info.name.split("/")
        name = os.path.basename(info.name)
        # Checkpoints stay; TensorBoard's events repeat history.json (a lease's results are scarce bytes).
        skip = name.endswith(SKIP) or EVENTS in name or CACHE in parts or info.issym()  # the data's link
        return None if skip else info
    with tarfile.open(os.path.join(out, "results.tar.gz.tmp"), "w:gz") as tar:
        tar.add(work, arcname=".", filter=keep)
    os.replace(os.path.join(out, "results.tar.gz.tmp"), os.path.join(out, "results.tar.gz"))


def resume_files(work, folder):
    """A training folder's train state and best checkpoints (with their .json), relative to work."""
    root = os.path.join(work, folder)
    found = [p for pattern in ("train_state.*", "best.*") for p in glob.glob(os.path.join(root, "**", pattern),
                                                                              recursive=True)]
    return sorted(os.path.relpath(p, work) for p in found if not p.endswith(".tmp"))


def cache_files(work):
    """The compile cache's files, the latest first (where not all fit, the later steps' programs travel)."""
    root = os.path.join(work, COMPILE_CACHE)
    paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    return [os.path.relpath(p, work) for p in sorted(paths, key=lambda p: -os.path.getmtime(p))]


def gz_tar(work, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:  # weights hardly compress: be quick
        for f in files:
            tar.add(os.path.join(work, f), arcname=f)
    return buf.getvalue()


def fitting(work, packed, files, limit):
    """`packed` + as many of `files` as fit under `limit` bytes once packed (sizes on disk as the guide)."""
    room = limit - sum(os.path.getsize(os.path.join(work, f)) for f in packed) - 2**20  # headers, a margin
    taken = []
    for f in files:
        size = os.path.getsize(os.path.join(work, f))
        if size <= room:
            taken.append(f)
            room -= size + 1024
    return taken


def pack_state(work, out, folders, with_cache=False):
    """State parts for `folders` (training folders a later lease resumes from), in order while they fit,
    then the compile cache's files while they fit; returns the folders left out. The new parts are written
    before the old ones go, so a stop while packing loses nothing."""
    packed, left_out = [], []
    for folder in folders:
        files = resume_files(work, folder)
        if files and sum(os.path.getsize(os.path.join(work, f)) for f in packed + files) <= STATE_BYTES - 2**20:
            packed += files
        elif files:
            left_out.append(folder)
    if with_cache:
        packed += fitting(work, packed, cache_files(work), STATE_BYTES)
    data = gz_tar(work, packed) if packed else b""
    new = []
    for i in range(0, len(data), PART_BYTES):
        new.append(os.path.join(out, f"{STATE}.{i // PART_BYTES + 1}"))
        atomic_bytes(new[-1], data[i:i + PART_BYTES])
    for old in glob.glob(os.path.join(out, STATE + ".*")):
        if old not in new:
            os.remove(old)
    return left_out


def member_path(m, where):
    """A member's path below the folder it is unpacked in, or BadInput: only regular files and folders,
    by relative names that stay inside (a results tarball holds nothing else), whatever tarfile's
    own filters do on this Python."""
    kind = "file" if m.isreg() else "folder" if m.isdir() else \
        "symbolic link" if m.issym() else "hard link" if m.islnk() else "device or other special file"
    if kind not in ("file", "folder"):
        raise BadInput(f"--continue {where}: member {m.name!r} is a {kind}; a device run's tarball holds only files "
                       f"and folders")
    parts = PurePosixPath(m.name).parts  # "." and "./" have none: the folder itself
    if not m.name or m.name.startswith("/") or ".." in parts or "\\" in m.name:
        raise BadInput(f"--continue {where}: member {m.name!r} would be written outside the folder it is unpacked in")
    rel = [p for p in parts if p != "."]
    return os.path.join(*rel) if rel else ""  # "." is the folder itself


def extract(tar_bytes_or_path, dest, where):
    """Unpack a tarball member by member (each checked by member_path) into dest; BadInput for one that is
    not a readable gzip'd tar."""
    try:
        opened = (tarfile.open(fileobj=io.BytesIO(tar_bytes_or_path), mode="r:gz")
                  if isinstance(tar_bytes_or_path, bytes) else tarfile.open(tar_bytes_or_path, "r:gz"))
        with opened as tar:
            members = [(m, member_path(m, where)) for m in tar.getmembers()]  # every header read first
            total = sum(m.size for m, _ in members)
            if total > UNPACK_BYTES or len(members) > UNPACK_MEMBERS:
                raise BadInput(f"--continue {where}: would unpack to {total:,} bytes in {len(members):,} members, "
                               f"more than a lease brings back (limits {UNPACK_BYTES:,} bytes, {UNPACK_MEMBERS:,} "
                               f"members)")
            for m, rel in members:
                path = os.path.join(dest, rel)
                if m.isdir():
                    os.makedirs(path, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with tar.extractfile(m) as src, open(path, "wb") as f:
                    shutil.copyfileobj(src, f)
                os.utime(path, (m.mtime, m.mtime))  # an evaluation stays newer than its checkpoint
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        said = (str(e).splitlines() or ["damaged"])[0].replace(os.path.join(dest, ""), "")  # no work folder's name
        raise BadInput(f"--continue {where}: not a readable results tarball ({type(e).__name__}: {said[:200]})") from None


def check_folder(prev):
    """A folder to continue from holds only files and folders: a link could bring any file of this
    machine into the results (and into the tarball the next lease packs)."""
    for d, dirs, files in os.walk(prev):
        for name in dirs + files:
            path = os.path.join(d, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a special file"
                raise BadInput(f"--continue {prev}: {os.path.relpath(path, prev)} is {kind}; a device run's results "
                               f"hold only files and folders")


def unpack_previous(prev, dest):
    """An earlier lease's results into dest: PREV is its results.tar.gz, the folder it came back in,
    or the tarball unpacked; state parts are read from beside the tarball (or inside the folder)."""
    if os.path.isdir(prev) and os.path.isfile(os.path.join(prev, "results.tar.gz")):
        prev = os.path.join(prev, "results.tar.gz")
    if os.path.isdir(prev):
        check_folder(prev)
        try:
            shutil.copytree(prev, dest, symlinks=True, dirs_exist_ok=True)
        except OSError as e:  # shutil.Error too: a file that cannot be read
            raise BadInput(f"--continue {prev}: cannot be read ({str(e).splitlines()[0][:200]})") from None
        beside = prev
    elif os.path.isfile(prev):
        extract(prev, dest, prev)
        beside = os.path.dirname(prev)
    elif os.path.exists(prev):
        raise BadInput(f"--continue {prev}: neither a results.tar.gz nor a folder")
    else:
        raise BadInput(f"--continue {prev}: no such results.tar.gz or folder")
    parts = sorted((p for p in glob.glob(os.path.join(beside, STATE + ".*")) if p.rsplit(".", 1)[1].isdigit()),
                   key=lambda p: int(p.rsplit(".", 1)[1]))
    if parts:
        extract(b"".join(open(p, "rb").read() for p in parts), dest, f"{prev} (its state parts)")
