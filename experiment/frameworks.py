"""The one table of frameworks: which modules train and evaluate, how checkpoints are named, which
device each uses by default. Benchmarks, tests and the Makefile read it; nothing else lists them.

    python -m experiment.frameworks train flax      # prints flax_impl.train (used by the Makefile)
"""
import sys
from dataclasses import dataclass

# One device vocabulary for both command lines. `gpu` is CUDA for PyTorch; torch_ref also keeps
# `cuda` as a synonym, and refuses `tpu` in one line.
DEVICES = ("auto", "cpu", "gpu", "tpu")


@dataclass(frozen=True)
class Framework:
    name: str
    train: str             # module run with python -m to train
    evaluate: str          # module run with python -m to evaluate a checkpoint
    ckpt_ext: str          # best/last/train_state file suffix
    default_device: str
    devices: tuple         # what --device accepts

    def command(self, which="train"):
        return f"python -m {getattr(self, which)}"


FRAMEWORKS = {
    "flax": Framework("flax", "flax_impl.train", "flax_impl.evaluate", ".msgpack", "auto", DEVICES),
    "torch": Framework("torch", "torch_ref.train", "torch_ref.evaluate", ".pt", "cpu", DEVICES + ("cuda",)),
}


# What people also call them (`make train FRAMEWORK=jax`).
ALIASES = {"jax": "flax", "pytorch": "torch"}


def named(name):
    """The framework called `name` (or one of its ALIASES); None when there is none."""
    return FRAMEWORKS.get(ALIASES.get(name, name))


def by_program(prog):
    """The framework whose train or evaluate module is `prog`."""
    return next(f for f in FRAMEWORKS.values() if prog in (f.train, f.evaluate))


if __name__ == "__main__":
    what, name = sys.argv[1:3]
    fw = named(name)
    if fw is None:
        sys.exit(f"FRAMEWORK={name} is not one of {', '.join(FRAMEWORKS)} (or {', '.join(ALIASES)})")
    print(getattr(fw, what))
