"""The split, batch order and normalisation are deterministic NumPy, shared by both frameworks."""
import numpy as np
import pytest

from experiment.errors import UserError
from experiment.split import batch_slices, epoch_order, make_splits, normalize, split_indices


def test_default_split_is_40k_10k_disjoint_and_seeded():
    tr, va = split_indices(50000)
    assert len(tr) == 40000 and len(va) == 10000
    assert len(np.intersect1d(tr, va)) == 0 and len(np.union1d(tr, va)) == 50000
    tr2, va2 = split_indices(50000)
    np.testing.assert_array_equal(va, va2)
    _, va3 = split_indices(50000, seed=1)
    assert not np.array_equal(va, va3)


def test_epoch_order_depends_on_seed_and_epoch_only():
    a = epoch_order(1000, seed=3, epoch=5)
    np.testing.assert_array_equal(a, epoch_order(1000, seed=3, epoch=5))
    assert sorted(a.tolist()) == list(range(1000))
    assert not np.array_equal(a, epoch_order(1000, seed=3, epoch=6))
    assert not np.array_equal(a, epoch_order(1000, seed=4, epoch=5))


def test_batches_keep_partial_last_batch():
    sl = batch_slices(10, 4)
    assert [(s.start, s.stop) for s in sl] == [(0, 4), (4, 8), (8, 10)]


def test_normalize_matches_tutorial_transform():
    x = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(normalize(x), [-1.0, 51 / 255 * 2 - 1, 1.0], rtol=0, atol=1e-7)
    assert normalize(x).dtype == np.float32


def test_make_splits_subset_covers_classes(tiny):
    s = make_splits(tiny, 0.2, 0, subset=100)
    assert len(s.train_x) == 80 and len(s.val_x) == 20
    assert len(np.unique(s.train_y)) == 10


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1])
def test_bad_val_fraction(frac):
    with pytest.raises(UserError, match="val-fraction"):
        split_indices(100, frac)
