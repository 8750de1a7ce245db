"""python -m torch_ref.train: the tutorial's training, in PyTorch eager.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
"""
from experiment.cli import default_config
from experiment.entry import Backend, run_train
from experiment.errors import exit_on_user_error
from experiment.frameworks import FRAMEWORKS
from experiment.lanes import by_group
from torch_ref.trainer import TorchTrainer

FRAMEWORK = FRAMEWORKS["torch"]
PROG = FRAMEWORK.train


def add_torch_flags(p):
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (needs a C++ compiler on CPU)")


# The tutorial's loop trains one model after the other.
BACKEND = Backend(FRAMEWORK, group_lanes=by_group, make_trainer=TorchTrainer, add_flags=add_torch_flags)


def default(**overrides):
    """The command line's defaults as a RunConfig, for code that builds a trainer itself."""
    return default_config(FRAMEWORK, add_torch_flags, **overrides)


@exit_on_user_error(PROG)
def main(argv=None):
    return run_train(BACKEND, argv)


if __name__ == "__main__":
    main()
