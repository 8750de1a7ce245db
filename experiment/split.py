"""The arrays both frameworks train on, the same for each: the deterministic train/val split,
normalisation, each epoch's image order and how it is cut into batches (the last one partial, as
PyTorch's DataLoader with drop_last=False), and the evaluation batches."""
from dataclasses import dataclass

import numpy as np

from experiment.dataset import Cifar10
from experiment.errors import UserError

DEFAULT_VAL_FRACTION = 0.2  # 50,000 -> 40,000 train / 10,000 validation


def normalize(x_uint8):
    """The tutorial's Normalize(mean=0.5, std=0.5) after ToTensor: (x/255 - 0.5)/0.5, float32, NHWC."""
    return ((x_uint8.astype(np.float32) / 255.0) - 0.5) / 0.5


def split_indices(n, val_fraction=DEFAULT_VAL_FRACTION, seed=0):
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val >= n:
        raise UserError(f"--val-fraction {val_fraction} of {n} images leaves an empty train or val set")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def epoch_order(n, seed, epoch):
    """The order in which epoch `epoch` visits the n training images for run seed `seed`."""
    return np.random.default_rng([seed, epoch]).permutation(n)


@dataclass
class Splits:
    train_x: np.ndarray  # normalised float32 NHWC
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def make_splits(data: Cifar10, val_fraction=DEFAULT_VAL_FRACTION, split_seed=0, subset=None):
    """Split the training set into train/val; `subset` keeps N training images drawn at random
    (seeded by split_seed; image folders are sorted by class, so the first N would be one class)."""
    x, y = data.train_x, data.train_y
    if subset is not None:
        if subset < 2 or subset > len(x):
            raise UserError(f"--subset must be between 2 and {len(x)}, got {subset}")
        keep = np.sort(np.random.default_rng([split_seed, subset]).permutation(len(x))[:subset])
        x, y = x[keep], y[keep]
    tr, va = split_indices(len(x), val_fraction, split_seed)
    return Splits(normalize(x[tr]), y[tr], normalize(x[va]), y[va],
                  normalize(data.test_x), data.test_y)


EVAL_BATCH = 1000  # images per evaluation batch; only memory depends on it


def batch_slices(n, batch_size):
    """Index ranges of each batch; the last one is partial when batch_size does not divide n."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def split_full(x, size):
    """(x's full batches as [nb, size, ...], the remainder): NumPy or JAX arrays alike."""
    nb = x.shape[0] // size
    return x[: nb * size].reshape(nb, size, *x.shape[1:]), x[nb * size:]


def lane_batches(orders, batch_size):
    """Per-lane epoch orders [lanes, n] -> (full batches [lanes, nb, B], partial batch [lanes, r])."""
    orders = np.asarray(orders, dtype=np.int32)
    nb = orders.shape[1] // batch_size
    full = orders[:, : nb * batch_size].reshape(len(orders), nb, batch_size)
    return full, orders[:, nb * batch_size:]


def eval_batches(x, y, size=EVAL_BATCH):
    """[(x[nb, B, ...], y[nb, B])]: the full evaluation batches, then the remainder as a batch of one."""
    (xf, xr), (yf, yr) = split_full(x, size), split_full(y, size)
    parts = [(xf, yf)] if len(xf) else []
    return parts + ([(xr[None], yr[None])] if len(xr) else [])


class EpochBatches:
    """One epoch's batches of every lane, as the loop hands them to a trainer: orders[lane] is that
    lane's image order; `full` its full batches [lanes, nb, B], `rest` the partial last one [lanes, r],
    `slices` the index ranges of every batch (the partial one last)."""

    def __init__(self, orders, batch_size):
        self.orders, self.batch_size = np.asarray(orders), batch_size
        self.full, self.rest = lane_batches(self.orders, batch_size)
        self.slices = batch_slices(self.orders.shape[1], batch_size)

    @classmethod
    def of_lanes(cls, lanes, n, epoch, batch_size):
        """Each lane's order of the n training images in `epoch` (a function of its seed and the epoch)."""
        return cls(np.stack([epoch_order(n, lane.seed, epoch) for lane in lanes]), batch_size)

    @property
    def sizes(self):
        return [s.stop - s.start for s in self.slices]
