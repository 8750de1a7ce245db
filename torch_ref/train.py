"""python -m torch_ref.train: the tutorial's training, in PyTorch.

  python -m torch_ref.train --model both --epochs 100 --data PATH --out runs/torch
  python -m torch_ref.train --engine vmap ...      # faster engines: torch_ref.engines
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from torch_ref.engines import COMPILE_MODES, ENGINES, check, group_lanes, make_trainer

FRAMEWORK = FRAMEWORKS["torch"]


def add_torch_flags(p):
    p.add_argument("--engine", choices=tuple(ENGINES), default="tutorial",
                   help="tutorial: the tutorial's loop (default); fast: no host sync inside an epoch; "
                        "cudagraph: each step replayed as a CUDA graph (CUDA only); vmap: all lanes as one program; "
                        "vmap-cudagraph: vmap's step for all lanes replayed as one CUDA graph (CUDA only)")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (needs a C++ compiler on CPU; engines tutorial, fast)")
    p.add_argument("--compile-mode", choices=COMPILE_MODES, default="default",
                   help="torch.compile's mode with --compile (reduce-overhead: CUDA graphs); default %(default)s")


# Trainers train one after the other (vmap: one for all lanes); epoch N's files are written while N+1 trains.
BACKEND = Backend(FRAMEWORK, group_lanes=group_lanes, make_trainer=make_trainer, add_flags=add_torch_flags,
                  check=check, writer_depth=lambda config: 1)


default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
