"""Data inputs crafted to do harm: code in a pickle, sizes that exhaust memory, files that block,
and a damaged decoded-array cache. Each is refused (or survived) with one line, quickly."""
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import experiment.data as data_module
from experiment.data import load_cifar10
from experiment.sources import bounded
from experiment.sources.official import write_official
from tests.conftest import REPO, tar_folder, write_imagefolder
from tests.test_bad_data import error_of


def assert_same(a, b):
    for f in ("train_x", "train_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# A load in a child process, so that a regression (a blocking open, an endless read) shows as a
# failed test, not a hung or swapping one: address space is capped at 1 GiB, time at 30 s.
CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from experiment.data import load_cifar10
from experiment.errors import UserError
t0 = time.perf_counter()
try:
    load_cifar10(sys.argv[1])
    error = None
except UserError as e:
    error = str(e)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the parent's size.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"error": error, "seconds": time.perf_counter() - t0, "peak_mib": hwm / 1024}))
"""


def load_in_child(source, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO, CIFAR10_CACHE=str(tmp_path / "child-cache"), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, source], capture_output=True, text=True, timeout=30,
                       env=env, cwd=REPO)
    assert r.returncode == 0 and r.stderr == "", r.stderr[-2000:]
    return json.loads(r.stdout)


# --- 1. a batch pickle cannot run code ---------------------------------------------------------

class OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


class RunsACommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.mark.parametrize("payload", [OpensAFile, RunsACommand])
@pytest.mark.parametrize("layout", ["folder", "tar.gz"])
def test_batch_pickle_cannot_run_code(tiny, tmp_path, payload, layout):
    witness = tmp_path / "witness"
    folder = write_official(tiny, str(tmp_path / "unpacked"))
    batch = os.path.join(folder, "cifar-10-batches-py", "data_batch_1")
    with open(batch, "wb") as f:
        pickle.dump({b"data": payload(str(witness)), b"labels": [0]}, f)
    source = folder
    if layout == "tar.gz":
        source = str(tmp_path / "cifar-10-python.tar.gz")
        with tarfile.open(source, "w:gz") as tar:
            tar.add(os.path.join(folder, "cifar-10-batches-py"), arcname="cifar-10-batches-py")
    msg = error_of(source)
    refused = {OpensAFile: "io.open", RunsACommand: f"{os.system.__module__}.system"}[payload]
    assert f"data_batch_1: refused to unpickle {refused} (a CIFAR-10 batch holds only arrays" in msg
    assert not witness.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_from_any_pickle_protocol_still_load(tiny, tmp_path, protocol):
    # Protocol 2 spells bytes as _codecs.encode, 5 spells arrays as _frombuffer; labels as NumPy ints.
    root = os.path.join(write_official(tiny, str(tmp_path / "unpacked")), "cifar-10-batches-py")
    for name in os.listdir(root):
        path = os.path.join(root, name)
        batch = pickle.loads(open(path, "rb").read())  # our own file: plain pickle is fine here
        if b"labels" in batch:
            batch[b"labels"] = [np.int64(v) for v in batch[b"labels"]]
        open(path, "wb").write(pickle.dumps(batch, protocol=protocol))
    assert_same(load_cifar10(root), tiny)


# --- 2. sizes are refused from headers, before anything is read --------------------------------

MIB = 1 << 20
ZEROS = bytes(MIB)


def gzip_tar_with_zeros(path, header, zeros_mib, tail=b""):
    """A .tar.gz holding `header` blocks, then `zeros_mib` MiB of real zeros (so an unbounded read
    really costs that memory), then `tail` and the end-of-archive blocks. One gzip member, built
    without compressing the zeros: after a full flush deflate's output for each MiB is the same."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one_mib = c.compress(ZEROS) + c.flush(zlib.Z_FULL_FLUSH)
    tail = tail + bytes(2 * tarfile.BLOCKSIZE)
    crc = zlib.crc32(header)
    for _ in range(zeros_mib):
        crc = zlib.crc32(ZEROS, crc)
    crc = zlib.crc32(tail, crc)
    size = len(header) + zeros_mib * MIB + len(tail)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        f.write(c.compress(header) + c.flush(zlib.Z_FULL_FLUSH))
        for _ in range(zeros_mib):
            f.write(one_mib)
        f.write(c.compress(tail) + c.flush())
        f.write(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return path


def tar_header(name, size, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(tarfile.USTAR_FORMAT)


HUGE_MIB = 1536  # 1.5 GiB declared, and present, in a 1.6 MB file


@pytest.mark.parametrize("case, archive, header, expected", [
    ("official batch", "cifar-10-python.tar.gz", tar_header("cifar-10-batches-py/data_batch_1", HUGE_MIB * MIB),
     "cifar-10-batches-py/data_batch_1 declares 1,610,612,736 bytes, over the 64 MiB limit "
     "(an official CIFAR-10 batch is about 31 MB)"),
    ("image", "images.tar.gz", tar_header("imgs/train/cat/x.png", HUGE_MIB * MIB),
     "imgs/train/cat/x.png declares 1,610,612,736 bytes, over the 1 MiB limit (a CIFAR-10 image file is a few KB)"),
    ("pax header", "images.tar.gz", tar_header("././@PaxHeader", HUGE_MIB * MIB, tarfile.XHDTYPE),
     "a tar header declares 1,610,612,736 bytes of metadata, over the 1 MiB limit"),
])
def test_huge_declared_size_is_refused_before_reading(tmp_path, case, archive, header, expected):
    path = gzip_tar_with_zeros(str(tmp_path / archive), header, HUGE_MIB)
    assert os.path.getsize(path) < 2 * MIB
    got = load_in_child(path, tmp_path)
    assert got["error"] is not None and expected in got["error"], got
    # Reading the 1.5 GiB through took 10-21 s and 1.5-3.1 GiB; refusing from the header takes
    # milliseconds. The memory bound is the check; the time bound is loose for a loaded machine.
    assert got["peak_mib"] < 300 and got["seconds"] < 8, got


def test_archive_that_unpacks_past_the_limit_stops(tmp_path, monkeypatch):
    # A gzip of zeros behind a harmless member: reading on would only cost time.
    monkeypatch.setattr(bounded, "ARCHIVE_LIMIT", bounded.Limit(64 * MIB, "test limit"))
    path = gzip_tar_with_zeros(str(tmp_path / "images.tar.gz"), tar_header("imgs/README", 100 * MIB), 100)
    t0 = time.perf_counter()
    assert "archive unpacks to over 64 MiB (test limit); not read further" in error_of(path)
    assert time.perf_counter() - t0 < 8  # stops at 64 MiB, not at the 100 MiB the header promises


def test_archive_with_too_many_entries_stops(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "ARCHIVE_MAX_ENTRIES", 50)
    path = tar_folder(write_imagefolder(tiny, str(tmp_path / "imgs")), str(tmp_path / "imgs.tar.gz"))
    assert "archive has over 50 entries (CIFAR-10 has 60,000 images)" in error_of(path)


def png_with_trailing_bytes(n):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue() + bytes(n)  # PIL ignores what follows IEND


def test_oversized_image_file_is_refused(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    blob = png_with_trailing_bytes(2 * MIB)
    (tmp_path / "imgs" / "train" / "cat" / "x.png").write_bytes(blob)
    assert f"train/cat/x.png is {len(blob):,} bytes, over the 1 MiB limit" in error_of(root)


def test_oversized_batch_file_is_refused(tiny, tmp_path):
    root = os.path.join(write_official(tiny, str(tmp_path / "unpacked")), "cifar-10-batches-py")
    with open(os.path.join(root, "test_batch"), "r+b") as f:
        f.truncate(65 * MIB)  # sparse: no disk used
    assert "test_batch is 68,157,440 bytes, over the 64 MiB limit" in error_of(root)


def special_file(kind, path):
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")
@pytest.mark.parametrize("kind, expected", [("fifo", "is a FIFO, not a regular file"),
                                            ("zero", "is a character device, not a regular file")])
@pytest.mark.parametrize("where", ["image in a class folder", "official batch", "the source itself"])
def test_special_files_are_refused_without_reading(tiny, tmp_path, kind, expected, where):
    if where == "image in a class folder":
        source = write_imagefolder(tiny, str(tmp_path / "imgs"))
        special_file(kind, os.path.join(source, "train", "cat", "x.png"))
        named = "imgs: train/cat/x.png"
    elif where == "official batch":
        source = os.path.join(write_official(tiny, str(tmp_path / "unpacked")), "cifar-10-batches-py")
        os.remove(os.path.join(source, "data_batch_2"))
        special_file(kind, os.path.join(source, "data_batch_2"))
        named = "cifar-10-batches-py/data_batch_2"
    else:
        source = named = str(tmp_path / "cifar-10-python.tar.gz")
        special_file(kind, source)
    got = load_in_child(source, tmp_path)
    assert got["error"] and f"{named} {expected}" in got["error"], got
    assert got["seconds"] < 8, got  # refused at once; a read would block until the child's timeout


def png_header_only(width, height):
    """A valid 1-bit PNG of any size: all-zero rows compress to almost nothing."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = zlib.compress(bytes(((width + 7) // 8 + 1) * height), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def jpeg_claiming(width, height):
    """A 32x32 JPEG whose frame header (SOF0) is patched to claim another size."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, "JPEG")
    blob = bytearray(buf.getvalue())
    sof = blob.index(b"\xff\xc0")
    blob[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(blob)


@pytest.mark.parametrize("name, blob, expected", [
    ("x.png", png_header_only(20000, 20000), "is 20000x20000, expected 32x32"),  # past PIL's own limit
    ("x.png", png_header_only(10000, 10000), "is 10000x10000, expected 32x32"),  # PIL would only warn
    ("x.jpg", jpeg_claiming(60000, 60000), "is 60000x60000, expected 32x32"),
])
def test_huge_image_header_is_refused_before_decoding(tiny, tmp_path, name, blob, expected):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    (tmp_path / "imgs" / "train" / "cat" / name).write_bytes(blob)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        assert f"image train/cat/{name} {expected}" in error_of(root)
    assert time.perf_counter() - t0 < 8  # from the header; decoding 400M pixels would take far longer


def test_only_png_and_jpeg_decoders_are_used(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(str(tmp_path / "imgs" / "train" / "cat" / "x.png"), "BMP")
    assert "cannot decode image train/cat/x.png (not a PNG or JPEG file)" in error_of(root)


# --- 3. the decoded-array cache ----------------------------------------------------------------

def cache_entries():
    return sorted(os.listdir(os.environ["CIFAR10_CACHE"]))


def the_entry():
    (name,) = cache_entries()
    return os.path.join(os.environ["CIFAR10_CACHE"], name)


def save_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def arrays_of(data, **changes):
    return {**{k: getattr(data, k) for k in ("train_x", "train_y", "test_x", "test_y")}, **changes}


DAMAGE = {
    "truncated": lambda p, d: open(p, "r+b").truncate(os.path.getsize(p) // 2),
    "emptied": lambda p, d: open(p, "wb").close(),
    "garbage": lambda p, d: open(p, "wb").write(b"PK\x03\x04" + bytes(100)),
    "a pickle inside": lambda p, d: save_npz(p, **arrays_of(d, train_y=np.array([{"a": 1}] * len(d.train_y)))),
    "labels of 99": lambda p, d: save_npz(p, **arrays_of(d, train_y=np.full_like(d.train_y, 99))),
    "float labels": lambda p, d: save_npz(p, **arrays_of(d, train_y=d.train_y.astype(np.float32))),
    "a missing array": lambda p, d: save_npz(p, **{k: v for k, v in arrays_of(d).items() if k != "test_y"}),
    "one array, not an npz": lambda p, d: np.save(open(p, "wb"), d.train_x),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_cache_entry_is_decoded_again(tiny, tmp_path, capsys, damage):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    load_cifar10(path)
    entry = the_entry()
    DAMAGE[damage](entry, tiny)
    capsys.readouterr()
    assert_same(load_cifar10(path), tiny)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: decoded-array cache {entry} is damaged ("), err
    assert err[0].endswith(f"); decoding {path} again")
    # The entry was written again: the next run is quiet and takes the cached arrays.
    assert_same(load_cifar10(path), tiny)
    assert capsys.readouterr().err == "" and cache_entries() == [os.path.basename(entry)]


def test_cache_entry_replaced_by_a_folder(tiny, tmp_path, capsys):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    load_cifar10(path)
    entry = the_entry()
    os.remove(entry)
    os.mkdir(entry)  # not ours to delete: warned about, read around
    capsys.readouterr()
    assert_same(load_cifar10(path), tiny)
    damaged, unwritable = capsys.readouterr().err.splitlines()
    assert damaged.endswith("is damaged (ValueError: not a regular file); decoding " + path + " again")
    assert unwritable.endswith("(Is a directory); continuing without it")


def test_folder_cache_sees_changes_inside_the_folder(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "imgs"))
    n = len(load_cifar10(root).train_y)
    os.remove(os.path.join(root, "train", "cat", sorted(os.listdir(os.path.join(root, "train", "cat")))[0]))
    assert len(load_cifar10(root).train_y) == n - 1
    shutil.rmtree(os.path.join(root, "train", "frog"))  # two levels down: the top folder's mtime is unchanged
    assert "train/ has no images of class frog" in error_of(root)


@pytest.mark.parametrize("where, reason", [("a file", "not a folder"), ("below a file", "Not a directory")])
def test_unusable_cache_folder_only_warns(tiny, tmp_path, monkeypatch, capsys, where, reason):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    cache = blocker if where == "a file" else blocker / "cache"
    monkeypatch.setenv("CIFAR10_CACHE", str(cache))
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    assert_same(load_cifar10(path), tiny)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: cannot write the decoded-array cache in {cache} ({reason}); continuing without it"]


def test_download_with_unusable_cache_folder_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("CIFAR10_CACHE", str(blocker))
    msg = error_of("download")
    assert f"cannot create the download folder {blocker} (not a folder)" in msg and "CIFAR10_CACHE" in msg


def test_interrupted_cache_write_leaves_nothing(tiny, tmp_path, monkeypatch):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))

    def killed_midway(f, **arrays):
        f.write(b"PK\x03\x04 half an entry")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        load_cifar10(path)
    assert cache_entries() == []  # neither a damaged entry nor a temporary file
    monkeypatch.undo()
    monkeypatch.setenv("CIFAR10_CACHE", str(tmp_path / "cache"))
    assert_same(load_cifar10(path), tiny)
    assert len(cache_entries()) == 1


def test_temporary_file_of_a_killed_writer_is_removed(tiny, tmp_path):
    path = write_official(tiny, str(tmp_path / "cifar-10-python.tar.gz"))
    entry = data_module._cache_file(path)
    os.makedirs(os.path.dirname(entry))
    stale, fresh = entry + ".killed.tmp", entry + ".writing.tmp"
    for f in (stale, fresh):
        open(f, "wb").write(b"half")
    old = time.time() - 2 * data_module.STALE_TMP_S
    os.utime(stale, (old, old))
    load_cifar10(path)
    assert cache_entries() == sorted([os.path.basename(entry), os.path.basename(fresh)])


# --- second hostile round: image folders that read wrongly rather than fail ---------------------
def test_a_16_bit_png_is_refused_not_saturated(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "images"))
    victim = os.path.join(root, "train", "cat", sorted(os.listdir(os.path.join(root, "train", "cat")))[0])
    Image.fromarray(np.full((32, 32), 30000, np.uint16)).save(victim)  # PIL mode I;16: RGB would clip to white
    msg = error_of(root)
    assert "more than 8 bits a pixel (PIL mode I;16)" in msg and "cat" in msg


def test_a_linked_split_folder_is_read(tiny, tmp_path):
    root = write_imagefolder(tiny, str(tmp_path / "images"))
    shutil.move(os.path.join(root, "train"), str(tmp_path / "elsewhere"))
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(root, "train"))  # `ls train/cat` shows the images
    os.symlink(root, os.path.join(root, "test", "loop"))  # a link back up the tree is walked once
    assert_same(load_cifar10(root), load_cifar10(write_imagefolder(tiny, str(tmp_path / "plain"))))


@pytest.mark.parametrize("layout", ["folder", "tar.gz"])
def test_the_data_twice_in_one_tree_is_refused(tiny, tmp_path, layout):
    """data/ and backup/old/ read as one set would put the same images in train and validation."""
    top = str(tmp_path / "top")
    write_imagefolder(tiny, os.path.join(top, "data"))
    write_imagefolder(tiny, os.path.join(top, "backup", "old"))
    source = top if layout == "folder" else tar_folder(top, str(tmp_path / "top.tar.gz"))
    msg = error_of(source)
    assert "in more than one place" in msg and "backup/old/" in msg and "data/" in msg
