"""python -m torch_ref.train: the tutorial's training, in PyTorch eager.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from experiment.lanes import by_group
from torch_ref.trainer import TorchTrainer

FRAMEWORK = FRAMEWORKS["torch"]


def add_torch_flags(p):
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (needs a C++ compiler on CPU)")


# The tutorial's loop trains one model after the other; epoch N's files are written while N+1 trains.
BACKEND = Backend(FRAMEWORK, group_lanes=by_group, make_trainer=TorchTrainer, add_flags=add_torch_flags,
                  writer_depth=lambda config: 1)


default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
