"""A small generated CIFAR-shaped data set that a LeNet can learn: class patterns plus noise."""
import numpy as np

from experiment.dataset import CLASSES, Cifar10

DEFAULT_SIZE = 5000


def make_synthetic(n_train=DEFAULT_SIZE, n_test=None, seed=1234):
    n_test = n_test or max(len(CLASSES), n_train // 5)
    rng = np.random.default_rng(seed)
    # One smooth colour pattern per class: low-frequency sinusoids, different for each class.
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    templates = []
    for _ in CLASSES:
        fy, fx = rng.uniform(0.5, 3.0, size=(2, 3))
        phase = rng.uniform(0, 2 * np.pi, size=3)
        chans = [np.sin(2 * np.pi * (fy[c] * yy + fx[c] * xx) + phase[c]) for c in range(3)]
        templates.append(np.stack(chans, axis=-1))
    templates = np.stack(templates)  # (10, 32, 32, 3) in [-1, 1]

    def draw(n):
        y = np.arange(n) % len(CLASSES)
        rng.shuffle(y)
        x = 128 + 60 * templates[y] + rng.normal(0, 40, size=(n, 32, 32, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)

    return Cifar10(*draw(n_train), *draw(n_test), CLASSES, f"synthetic:{n_train}")
