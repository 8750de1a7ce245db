"""python -m torch_ref.train: the tutorial's training, in PyTorch.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
  python -m torch_ref.train --engine vmap ...      # faster engines: torch_ref.engines
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from torch_ref.checkpoint import CODEC
from torch_ref.engines import check, make_trainer, partition_lanes
from torch_ref.options import TorchOptions, add_torch_flags

FRAMEWORK = FRAMEWORKS["torch"]

# Trainers train one after the other (vmap: one for all lanes); epoch N's files are written while N+1 trains.
BACKEND = Backend(FRAMEWORK, partition_lanes=partition_lanes, make_trainer=make_trainer, codec=CODEC,
                  options=TorchOptions, add_flags=add_torch_flags, check=check, writer_depth=lambda config: 1)


default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
