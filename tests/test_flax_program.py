"""The compiled programs of the NNX models against those of the Linen models they replaced: every dot
and convolution at the precision asked, the same heavy ops (matmuls, convolutions, pooling windows,
loops, gathers and scatters, reductions), and as many ops in all within TOTAL_RTOL.

REFERENCE was counted by this file's `op_counts` on the programs parity_tests.helpers.lowered_programs
gives (FlaxTrainer.lowered_text then) at commit 7038888 (the Linen models; jax 0.10.2, flax 0.12.8), on
the inputs `lowered` builds. Another JAX version may lower the same model to other op counts: count
them again from the code before a change to compare with.
"""
import collections
import re

import numpy as np
import pytest

from experiment.lanes import plan_lanes
from experiment.sources.synthetic import make_synthetic
from experiment.split import EpochBatches, epoch_order, make_splits
from flax_impl import train as flax_train
from flax_impl.trainer import FlaxTrainer
from parity_tests.helpers import lowered_programs

CASES = {
    "baseline": dict(model="baseline"),
    "dropout": dict(model="dropout"),
    "lanes": dict(dropout_rates=[0, 0.25, 0.5], seeds=[1, 2]),
    "dropout-xla": dict(model="dropout", impl="xla"),
}
HEAVY = ("dot_general", "convolution", "reduce_window", "select_and_scatter", "while", "gather", "scatter", "reduce")
# (case, program): (StableHLO ops in all, the heavy ones by kind)
REFERENCE = {
    ("baseline", "epoch"): (985, {"dot_general": 18, "while": 1, "gather": 8, "scatter": 4, "reduce": 14}),
    ("baseline", "eval"): (236, {"dot_general": 7, "while": 1, "gather": 4, "reduce": 7}),
    ("dropout", "epoch"): (1498, {"dot_general": 18, "while": 6, "gather": 8, "scatter": 4, "reduce": 14}),
    ("dropout", "eval"): (236, {"dot_general": 7, "while": 1, "gather": 4, "reduce": 7}),
    ("lanes", "epoch"): (1616, {"dot_general": 18, "while": 6, "gather": 8, "scatter": 4, "reduce": 14}),
    ("lanes", "eval"): (233, {"dot_general": 7, "while": 1, "gather": 4, "reduce": 7}),
    ("dropout-xla", "epoch"): (1202, {"dot_general": 9, "convolution": 5, "reduce_window": 2, "select_and_scatter": 2,
                                      "while": 6, "gather": 8, "scatter": 4, "reduce": 14}),
    ("dropout-xla", "eval"): (172, {"dot_general": 3, "convolution": 2, "reduce_window": 2, "while": 1, "gather": 4,
                                    "reduce": 7}),
}
# A Dropout network's rate is now an input of the program in every run (it was a constant where all
# lanes had one rate): each of its three masks gains a select (rate 0: the input as it is) in the
# forward and the backward pass, 25 ops of ~1,500 in the single-rate programs.
TOTAL_RTOL = 0.03
OP = re.compile(r"\bstablehlo\.([a-z_]+)")
# A dot's precision, and a convolution's: `precision = [P, P]`, `precision_config = [#stablehlo<precision P>, ...]`
PRECISION = re.compile(r"precision = \[(\w+), (\w+)\]|precision_config = \[#stablehlo<precision (\w+)>, "
                       r"#stablehlo<precision (\w+)>\]")


def op_counts(text):
    """{StableHLO op kind: how many} of a lowered program (the mesh declaration is not an op)."""
    counts = collections.Counter(OP.findall(text))
    counts.pop("mesh", None)
    return counts


def precisions(text):
    """The precisions of every dot and convolution of a lowered program, one set of names per op."""
    ops = [line for line in text.splitlines() if re.search(r"stablehlo\.(dot_general|convolution)\b", line)]
    return [{p for p in m.groups() if p} if (m := PRECISION.search(line)) else {"DEFAULT"} for line in ops]


@pytest.fixture(scope="module")
def lowered():
    """{(case, 'epoch' or 'eval'): StableHLO text} of the programs each case compiles."""
    splits = make_splits(make_synthetic(300, 50, seed=1))
    texts = {}
    for case, flags in CASES.items():
        config = flax_train.default(device="cpu", no_progress=True, **flags)
        lanes = plan_lanes(config)
        trainer = FlaxTrainer(config, lanes, splits)
        orders = np.stack([epoch_order(len(splits.train_x), lane.seed, 1) for lane in lanes])
        epoch, evaluation = lowered_programs(trainer, EpochBatches(orders, config.batch_size))
        texts[(case, "epoch")], texts[(case, "eval")] = epoch, evaluation
    return texts


def differences(text, reference):
    """What keeps a program from matching its reference (empty: it matches)."""
    total, heavy = reference
    counts = op_counts(text)
    wrong = [f"{k}: {counts[k]} (was {heavy.get(k, 0)})" for k in HEAVY if counts[k] != heavy.get(k, 0)]
    n = sum(counts.values())
    if abs(n - total) > TOTAL_RTOL * total:
        wrong.append(f"{n} ops (was {total})")
    levels = precisions(text)
    if len(levels) != counts["dot_general"] + counts["convolution"] or any(p != {"HIGHEST"} for p in levels):
        wrong.append(f"precisions {levels}")
    return wrong


@pytest.mark.slow  # lowers every training program
@pytest.mark.parametrize("program", sorted(REFERENCE))
def test_the_program_has_the_linen_programs_ops_and_precision(lowered, program):
    text = lowered[program]
    print(program, sum(op_counts(text).values()), "ops, reference", REFERENCE[program][0])
    assert differences(text, REFERENCE[program]) == []


@pytest.mark.slow  # lowers every training program
def test_negative_controls_another_formulation_or_precision_is_caught(lowered):
    """XLA's convolutions where the matmul formulation was, and one dot at another precision."""
    assert differences(lowered[("dropout-xla", "epoch")], REFERENCE[("dropout", "epoch")])
    text = lowered[("baseline", "epoch")]
    assert differences(text.replace("precision = [HIGHEST, HIGHEST]", "precision = [DEFAULT, DEFAULT]", 1),
                       REFERENCE[("baseline", "epoch")])
