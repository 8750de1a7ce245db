"""The numbers the tutorial's claims are judged by, the epoch each claim needs, and the verdict record
every judge returns (benchmarks.report.claims and benchmarks.report.overtake judge them)."""

PEAK_AROUND = (40, 60)   # "peaks ~ epoch 50": confirmed when the peak's 95% CI lies inside, refuted when outside
REMOVED_RISE = 0.05      # a val-loss rise under 5% of its minimum at the end of the run is no overfitting
EARLY_EPOCH = 10         # where "slows the loss decrease" is measured
RISE_WINDOW = 10         # the last epochs whose fitted val-loss slope says whether it still rises (a1, b)
TUTORIAL_END = 100       # the tutorial's run: its figure, and the epoch its claims a1, a3 and b are about
OVERTAKE = (200, 300)    # the tutorial's guess

# The epoch each claim's test needs, or the run's planned last epoch if the run planned fewer: a claim
# is judged once the run reached it, whatever the run planned, and not judged before (a cut run's last
# epoch is not the one the claim is about). a1, a3 and b are about the tutorial's epoch 100 (a run of
# 300 epochs is judged on them at 100); a2 needs its window's end (a peak before it is placed; a peak
# after the epochs reached could still come, so a cut run's peak is never confirmed); d needs epoch
# 100 to be judged at all (where Dropout is ahead from an epoch before 200 through the epochs reached,
# 'not before 200' is refuted), and any other outcome of d waits for the planned end (WAITS).
NEEDS = {"a1": TUTORIAL_END, "a2": PEAK_AROUND[1], "a3": TUTORIAL_END, "b": TUTORIAL_END, "c1": EARLY_EPOCH,
         "c1e": EARLY_EPOCH, "c2": EARLY_EPOCH, "d1": TUTORIAL_END, "d2": TUTORIAL_END}
WAITS = OVERTAKE[1]
# Claims judged at their own epoch, which read no epoch after it; the others read every epoch reached.
AT_ITS_EPOCH = ("a1", "a3", "b", "c1", "c1e", "c2")


def need(claim_id, planned):
    return int(min(planned, NEEDS[claim_id]))


def waits(planned):
    """The epoch an overtake that has not happened before 200 waits for: the planned end, at most 300."""
    return int(min(planned, WAITS))


def verdict(claim_id, claim, result, evidence, **numbers):
    """A judge's answer; `result` None: the outcome needs a later epoch (numbers['waits'] says which)."""
    return {"id": claim_id, "claim": claim, "verdict": result, "evidence": evidence, "numbers": numbers}
