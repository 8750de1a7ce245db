"""PyTorch state_dict <-> Flax params, exact in both directions (torch is imported lazily).

conv: torch (O, C, kh, kw) <-> flax (kh, kw, C, O); linear: torch (out, in) <-> flax (in, out).
fc1 needs no permutation because the Flax model flattens in PyTorch's (C, H, W) order.
"""
import numpy as np

CONVS = ("conv1", "conv2")
DENSES = ("fc1", "fc2", "fc3")
TORCH_NAMES = tuple(f"{n}.{k}" for n in CONVS + DENSES for k in ("weight", "bias"))  # a LeNet state_dict's keys


def torch_to_flax(state_dict):
    """state_dict (tensors or arrays) -> Flax params dict of float32 numpy arrays."""
    sd = {k: _numpy(v) for k, v in state_dict.items()}
    params = {}
    for n in CONVS:
        params[n] = {"kernel": sd[f"{n}.weight"].transpose(2, 3, 1, 0), "bias": sd[f"{n}.bias"]}
    for n in DENSES:
        params[n] = {"kernel": sd[f"{n}.weight"].T, "bias": sd[f"{n}.bias"]}
    # Copy: .numpy() shares memory with the tensors, and an optimiser step would change them.
    return {n: {k: np.array(v, dtype=np.float32, copy=True) for k, v in p.items()} for n, p in params.items()}


def flax_to_torch(params):
    """Flax params -> state_dict of torch tensors, loadable by torch_ref's models."""
    import torch
    sd = {}
    for n in CONVS:
        sd[f"{n}.weight"] = np.asarray(params[n]["kernel"]).transpose(3, 2, 0, 1)
        sd[f"{n}.bias"] = np.asarray(params[n]["bias"])
    for n in DENSES:
        sd[f"{n}.weight"] = np.asarray(params[n]["kernel"]).T
        sd[f"{n}.bias"] = np.asarray(params[n]["bias"])
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in sd.items()}


def _numpy(v):
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
