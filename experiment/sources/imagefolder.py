"""An image-folder tree `<root>/{train,test}/<class>/*.(png|jpg)`, as a folder or a (gzipped) tar.

A tar is streamed in place: nothing is unpacked to disk.
"""
import io
import os
import warnings

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from experiment.dataset import CLASSES, IMAGE_SHAPE, Cifar10
from experiment.errors import UserError
from experiment.sources.bounded import ARCHIVE_ERRORS, IMAGE_LIMIT, check_member, entries, open_tar, read_regular

SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# The decoders PIL may use: CIFAR-10 images are PNG or JPEG, and every other decoder (EPS calls
# Ghostscript, for one) would only widen what a crafted file can reach.
FORMATS = ("PNG", "JPEG")


def _split_and_class(relpath):
    """('train', 'cat') for '.../train/cat/0001.jpg', else None."""
    parts = relpath.replace("\\", "/").split("/")
    if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
        return None
    split, cls = parts[-3], parts[-2]
    return (split, cls) if split in SPLITS else None


def _root_of(relpath):
    """The folder holding train/ and test/: '' for 'train/cat/1.png', 'a/b' for 'a/b/test/cat/1.png'."""
    return "/".join(relpath.replace("\\", "/").split("/")[:-3])


def _open_image(blob, name, source):
    """PIL's lazy open: the header is parsed, no pixels are decoded yet."""
    try:
        with warnings.catch_warnings():
            # Sizes are checked below; PIL's decompression-bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(blob), formats=FORMATS)  # no other decoder sees the bytes
    except Image.DecompressionBombError:  # a header far past PIL's own pixel limit
        w, h = _declared_size(blob)
        raise UserError(f"{source}: image {name} is {w}x{h}, expected 32x32") from None
    except UnidentifiedImageError:
        raise UserError(f"{source}: cannot decode image {name} (not a PNG or JPEG file)") from None


def _declared_size(blob):
    """(width, height) from a PNG or JPEG header, without PIL's pixel-limit check or decoding."""
    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile):
        try:
            return plugin(io.BytesIO(blob)).size
        except Exception:  # not this format
            continue
    return "?", "?"


# PIL's modes of more than 8 bits a channel: converting them to RGB clips every value over 255 (a
# 16-bit PNG would come out white), so they are refused rather than read wrongly.
WIDE_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N")


def _decode(blob, name, source):
    img = _open_image(blob, name, source)
    if img.size != (IMAGE_SHAPE[1], IMAGE_SHAPE[0]):  # refuse from the header: a 20000x20000 PNG is a 50 KB file
        w, h = img.size
        raise UserError(f"{source}: image {name} is {w}x{h}, expected 32x32")
    if img.mode in WIDE_MODES:
        raise UserError(f"{source}: image {name} has more than 8 bits a pixel (PIL mode {img.mode}); "
                        f"CIFAR-10's images have 8 bits a channel: convert it first")
    try:
        pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # PIL raises many types for damaged pixel data
        raise UserError(f"{source}: cannot decode image {name} ({type(e).__name__}: {e})") from None
    if pixels.shape != IMAGE_SHAPE:
        raise UserError(f"{source}: image {name} decodes to {pixels.shape}, expected 32x32x3")
    return pixels


def _raise(error):
    raise error


def _iter_folder(root):
    # A folder that cannot be listed is an error, not a silently missing class. Linked folders are
    # followed (a train/ that is a link to another disk is still read), each real folder once.
    seen = set()
    for dirpath, dirnames, files in os.walk(root, onerror=_raise, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree, or a second link to the same folder
            dirnames.clear()
            continue
        seen.add(real)
        dirnames.sort()
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, root)
            if _split_and_class(rel):
                yield rel, read_regular(full, IMAGE_LIMIT, f"{root}: {rel}")


def _iter_tar(path):
    with open_tar(path, IMAGE_LIMIT) as tar:
        for m in entries(tar, path):
            if m.isfile() and _split_and_class(m.name):
                check_member(m, IMAGE_LIMIT, f"{path}: {m.name}")
                yield m.name, tar.extractfile(m).read()


def _collect(items, source):
    found = {s: [] for s in SPLITS}
    extra, roots = set(), {}
    for name, blob in items:
        split, cls = _split_and_class(name)
        roots.setdefault(_root_of(name), name)
        if len(roots) > 1:  # e.g. data/ and backup/old/: read as one, its images would be in train and val
            where = " and ".join(f"{r or '.'}/ ({n})" for r, n in roots.items())
            raise UserError(f"{source}: holds CIFAR-10's train/ and test/ folders in more than one place: {where}; "
                            f"point --data at one of them")
        if cls not in CLASSES:
            extra.add(cls)
            continue
        found[split].append((name, CLASSES.index(cls), _decode(blob, name, source)))
    if extra:
        raise UserError(f"{source}: unknown class folder(s) {', '.join(sorted(extra))}; "
                        f"expected exactly {', '.join(CLASSES)}")
    arrays = []
    for split in SPLITS:
        rows = sorted(found[split], key=lambda r: r[0])  # file order, not archive order
        if not rows:
            raise UserError(f"{source}: no images under {split}/<class>/ (expected {split}/ and test/ folders)")
        missing = sorted(set(CLASSES) - {CLASSES[r[1]] for r in rows})
        if missing:
            raise UserError(f"{source}: {split}/ has no images of class {', '.join(missing)}")
        arrays.append(np.stack([r[2] for r in rows]))
        arrays.append(np.array([r[1] for r in rows], dtype=np.int64))
    return Cifar10(*arrays, CLASSES, source)


def looks_imagefolder(path):
    """A tar, or a folder with train/ or test/ in it or one level down (an unpacked tar's root
    folder). Any other folder is not walked: `--data /` must not read the whole disk."""
    if os.path.isdir(path):
        tops = [path] + [os.path.join(path, d) for d in _subfolders(path)]
        return any(os.path.isdir(os.path.join(top, split)) for top in tops for split in SPLITS)
    return path.endswith((".tar", ".tar.gz", ".tgz"))


def _subfolders(path):
    try:
        return [e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def load_imagefolder(path):
    if os.path.isdir(path):
        return _collect(_iter_folder(path), path)
    try:
        return _collect(_iter_tar(path), path)
    except ARCHIVE_ERRORS as e:
        raise UserError(f"{path}: truncated or corrupt archive ({type(e).__name__}: {e})") from None
