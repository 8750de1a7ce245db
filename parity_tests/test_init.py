"""`--init torch` draws every Flax parameter from PyTorch's default distribution; `--init flax` does not."""
import functools

import numpy as np
import torch
from scipy import stats

from flax_impl.convert import torch_to_flax
from flax_impl.models import Network
from parity_tests.helpers import flax_init_many, leaves
from parity_tests.tolerances import KS_P_MIN
from torch_ref.models import build_model as build_torch

SEEDS = range(20)  # pooled, so that even a 6-element bias has 120 samples


@functools.cache  # the KS test and the bounds check read the same draws
def pooled_flax(init_scheme):
    model = Network("baseline", init=init_scheme)
    return {k: v.ravel() for k, v in flax_init_many(model, SEEDS).items()}


def pooled_torch():
    per_seed = []
    for s in SEEDS:
        torch.manual_seed(s)
        per_seed.append(leaves(torch_to_flax(build_torch("baseline").state_dict())))
    return {k: np.concatenate([p[k].ravel() for p in per_seed]) for k in per_seed[0]}


def ks_pvalues(flax_init):
    ref = pooled_torch()
    return {k: stats.ks_2samp(v, ref[k]).pvalue for k, v in pooled_flax(flax_init).items()}


def test_torch_init_matches_pytorch_per_layer():
    p = ks_pvalues("torch")
    print("KS p-values, --init torch vs PyTorch:", {k: round(v, 3) for k, v in p.items()})
    assert min(p.values()) > KS_P_MIN, p
    for k, v in pooled_flax("torch").items():  # bounds: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in float32
        fan_in = {"conv1": 75, "conv2": 150, "fc1": 400, "fc2": 120, "fc3": 84}[k.split("/")[0]]
        assert np.abs(v).max() <= np.float32(1 / np.sqrt(fan_in))  # the low end is drawn (float32(0.05) > 0.05)


def test_negative_control_flax_init_is_detected():
    p = ks_pvalues("flax")
    print("KS p-values, --init flax vs PyTorch:", {k: f"{v:.1e}" for k, v in p.items()})
    assert all(v < KS_P_MIN for v in p.values()), p
