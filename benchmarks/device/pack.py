"""What a lease brings back, and how the next lease reads it.

results.tar.gz: every step's files but checkpoints and caches (histories, run.json, summaries, logs,
steps.json). state.tar.gz.1 (and .2): what a cut training step needs to resume next lease, its
train state and best checkpoints (the test evaluation reads them at the end); ~0.75 MB of train
state per lane, so 16 lanes fit one part. At most two parts of at most 15 MiB, so that with the
report, the log and three tables a lease brings back at most 8 files of at most 16 MB; a cut step
whose files do not fit is trained from its start next lease, and the log says so."""
import glob
import io
import os
import shutil
import tarfile

PART_BYTES, MAX_PARTS = 15 * 2**20, 2
STATE = "state.tar.gz"
SKIP = (".msgpack", ".pt", ".tmp")


def atomic_bytes(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def pack_results(work, out):
    def keep(info):
        name = os.path.basename(info.name)
        skip = name.endswith(SKIP) or "jax-cache" in info.name.split("/") or info.issym()  # the data's link
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


def gz_tar(work, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in files:
            tar.add(os.path.join(work, f), arcname=f)
    return buf.getvalue()


def pack_state(work, out, folders):
    """State parts for the cut training folders, in order while they fit; returns the folders left out."""
    packed, left_out = [], []
    for folder in folders:
        files = resume_files(work, folder)
        if files and len(gz_tar(work, packed + files)) <= PART_BYTES * MAX_PARTS:
            packed += files
        elif files:
            left_out.append(folder)
    for old in glob.glob(os.path.join(out, STATE + ".*")):
        os.remove(old)
    data = gz_tar(work, packed) if packed else b""
    for i in range(0, len(data), PART_BYTES):
        atomic_bytes(os.path.join(out, f"{STATE}.{i // PART_BYTES + 1}"), data[i:i + PART_BYTES])
    return left_out


def extract(tar_bytes_or_path, dest):
    opened = (tarfile.open(fileobj=io.BytesIO(tar_bytes_or_path), mode="r:gz") if isinstance(tar_bytes_or_path, bytes)
              else tarfile.open(tar_bytes_or_path, "r:gz"))
    with opened as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, links out or device files from a tarball


def unpack_previous(prev, dest):
    """An earlier lease's results into dest: PREV is its results.tar.gz, the folder it came back in,
    or the tarball unpacked; state parts are read from beside the tarball (or inside the folder)."""
    if os.path.isdir(prev) and os.path.isfile(os.path.join(prev, "results.tar.gz")):
        prev = os.path.join(prev, "results.tar.gz")
    if os.path.isdir(prev):
        shutil.copytree(prev, dest, dirs_exist_ok=True)
        beside = prev
    elif os.path.isfile(prev):
        extract(prev, dest)
        beside = os.path.dirname(prev)
    else:
        raise ValueError(f"--continue {prev}: no such results.tar.gz or folder")
    parts = sorted((p for p in glob.glob(os.path.join(beside, STATE + ".*")) if p.rsplit(".", 1)[1].isdigit()),
                   key=lambda p: int(p.rsplit(".", 1)[1]))
    if parts:
        extract(b"".join(open(p, "rb").read() for p in parts), dest)
    if not os.path.isfile(os.path.join(dest, "steps.json")):
        raise ValueError(f"--continue {prev}: no steps.json in it (not a device run's results)")
