"""The in-memory data set every source produces, and the checks every source must pass."""
import hashlib
from dataclasses import dataclass

import numpy as np

from experiment.errors import UserError

# CIFAR-10's own label order (batches.meta); also alphabetical, so image folders map the same way.
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)


@dataclass
class Cifar10:
    train_x: np.ndarray  # (N, 32, 32, 3) uint8
    train_y: np.ndarray  # (N,) int64 in [0, 10)
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple = CLASSES
    source: str = ""

    def validate(self):
        """Raise UserError unless the arrays have CIFAR-10's shapes, dtypes and labels."""
        for name in ("train", "test"):
            x, y = getattr(self, f"{name}_x"), getattr(self, f"{name}_y")
            if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
                raise UserError(f"{self.source}: {name} images have shape {x.shape[1:]}, expected 32x32x3")
            if x.dtype != np.uint8:
                raise UserError(f"{self.source}: {name} images are {x.dtype}, expected uint8")
            if y.ndim != 1 or y.dtype != np.int64:
                raise UserError(f"{self.source}: {name} labels are {y.dtype} of shape {y.shape}, expected int64 (N,)")
            if len(x) != len(y):
                raise UserError(f"{self.source}: {len(x)} {name} images but {len(y)} labels")
            if len(y) == 0:
                raise UserError(f"{self.source}: no {name} images")
            if y.min() < 0 or y.max() >= len(CLASSES):
                raise UserError(f"{self.source}: {name} labels outside 0..9")
        missing = sorted(set(range(len(CLASSES))) - set(np.unique(self.train_y).tolist()))
        if missing:
            names = ", ".join(CLASSES[i] for i in missing)
            raise UserError(f"{self.source}: training set has no images of class {names}")
        return self

    def fingerprint(self):
        """A hash of the images and labels themselves (not of where they were read from): the same
        data moved elsewhere has the same fingerprint, other data another one."""
        h = hashlib.blake2b(digest_size=16)
        for a in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(repr((a.dtype.str, a.shape)).encode())
            h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
        return h.hexdigest()
