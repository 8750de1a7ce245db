"""The margins of the frameworks' equivalence test of the learning curves (benchmarks.report.equivalence),
each with its reason. Two one-sided Welch tests at the 5% level over seeds, corrected across the table
as its difference tests are, at epochs 10, 50 and 100. They live with the report that applies them (an
installed report does not import the parity suite); the parity suite's own tolerances, for checks of
one step or a few, are in parity_tests/tolerances.py.

The margins are differences no claim of the report could notice, fixed before looking at them:"""

# - validation accuracy: the smallest effect the claims rest on is Dropout's ~5-point lead over the
#   BaseLine at epoch 100; 1 point is a fifth of it (and about one seed-to-seed standard deviation).
EQUIV_VAL_ACC_POINTS = 1.0
# - training loss: Dropout's training loss is ~0.5 above the BaseLine's at epoch 10 (claim c1);
#   0.03 is 6% of that.
EQUIV_TRAIN_LOSS = 0.03
# - validation loss, relative to its mean: 3% is 0.03 at epoch 10 (val loss ~1.1); the overfitting
#   BaseLine's val loss grows to ~4 by epoch 100 and varies by ~0.3 between seeds, where an absolute
#   0.03 would mean nothing (claim a1 rests on rises of ~300%).
EQUIV_VAL_LOSS_RELATIVE = 0.03
