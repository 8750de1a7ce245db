"""Deterministic split, batch order and normalisation: the same arrays for every framework
(how an epoch's order is cut into batches: experiment.batching)."""
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
