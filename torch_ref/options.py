"""PyTorch's own settings (RunConfig.options) and their flags: each default written once, here."""
from dataclasses import dataclass
from typing import ClassVar

ENGINE_NAMES = ("tutorial", "fast", "cudagraph", "vmap", "vmap-cudagraph")  # torch_ref.engines
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class TorchOptions:
    engine: str = "tutorial"        # how the same maths runs (torch_ref.engines)
    compile: bool = False           # train through torch.compile(model) (engines tutorial, fast)
    compile_mode: str = "default"   # torch.compile's mode with --compile
    RESUME_MAY_CHANGE: ClassVar[tuple] = ()

    @classmethod
    def add_flags(cls, parser):
        add_torch_flags(parser)

    @classmethod
    def process_folder(cls, args):
        return None  # one process

    def writer_depth(self):
        return 1  # epoch N's files are written while N+1 trains


def add_torch_flags(p):
    d = TorchOptions
    p.add_argument("--engine", choices=ENGINE_NAMES, default=d.engine,
                   help="tutorial: the tutorial's loop (default); fast: no host sync inside an epoch; "
                        "cudagraph: each step replayed as a CUDA graph (CUDA only); vmap: all lanes as one program; "
                        "vmap-cudagraph: vmap's step for all lanes replayed as one CUDA graph (CUDA only)")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model) (needs a C++ compiler on CPU; engines tutorial, fast)")
    p.add_argument("--compile-mode", choices=COMPILE_MODES, default=d.compile_mode,
                   help="torch.compile's mode with --compile (reduce-overhead: CUDA graphs); default %(default)s")
