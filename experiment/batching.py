"""How images are cut into batches, for both frameworks: training batches in each epoch's order
(the last one partial, as PyTorch's DataLoader with drop_last=False) and evaluation batches."""
import numpy as np

from experiment.split import epoch_order

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
