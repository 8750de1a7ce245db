"""python -m torch_ref.train: the tutorial's training, in PyTorch.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
  python -m torch_ref.train --engine vmap ...      # faster engines: torch_ref.engines
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from torch_ref.checkpoint import CODEC
from torch_ref.engines import ENGINE_TRAINERS
from torch_ref.options import TorchOptions

BACKEND = Backend(FRAMEWORKS["torch"], options=TorchOptions, codec=CODEC, trainers=ENGINE_TRAINERS)
default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
