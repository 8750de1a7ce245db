"""PyTorch training engines (--engine): the same maths, batches, metrics, checkpoints and train
states, run in different ways.

    tutorial   torch_ref.trainer.TorchTrainer: the tutorial's loop, loss read back every step,
               deterministic algorithms; one lane after the other
    fast       no host sync inside an epoch, fused (CUDA) / foreach (CPU) Adam (engines.fast)
    cudagraph  fast, each lane's whole step replayed as a CUDA graph; CUDA only (engines.cudagraph)
    vmap       every lane (models x rates x seeds) as one torch.func program (engines.vmap)
    vmap-cudagraph  vmap, its step replayed as one CUDA graph for all lanes; CUDA only
               (engines.vmap_cudagraph)
"""
from experiment.errors import UserError
from experiment.lanes import by_folder
from torch_ref.engines.cudagraph import CudaGraphTrainer
from torch_ref.engines.fast import FastTrainer
from torch_ref.engines.graphs import require_cuda
from torch_ref.engines.vmap import VmapTrainer
from torch_ref.engines.vmap_cudagraph import VmapGraphTrainer
from torch_ref.trainer import TorchTrainer, pick_device

ENGINES = {"tutorial": TorchTrainer, "fast": FastTrainer, "cudagraph": CudaGraphTrainer, "vmap": VmapTrainer,
           "vmap-cudagraph": VmapGraphTrainer}
ONE_PROGRAM = ("vmap", "vmap-cudagraph")  # engines that train every lane at once
CUDA_ONLY = {"cudagraph": "fast", "vmap-cudagraph": "vmap"}  # and the engine to use instead without CUDA
COMPILED = ("tutorial", "fast")  # engines that train through torch.compile with --compile


def partition_lanes(config, lanes):
    """One trainer per folder (network and rate), as the tutorial trains them; vmap: one for all."""
    return [list(lanes)] if config.options.engine in ONE_PROGRAM else by_folder(config, lanes)


def check(config, lanes=None):
    """UserError for an engine, flag or device the run cannot use: what the train command checks
    before it creates anything."""
    o = config.options
    if o.compile and o.engine not in COMPILED:
        raise UserError(f"--compile works with --engine {' or '.join(COMPILED)}, not {o.engine}")
    if o.compile_mode != "default" and not o.compile:
        raise UserError(f"--compile-mode {o.compile_mode} needs --compile")
    if o.engine in CUDA_ONLY:
        require_cuda(config, o.engine, instead=CUDA_ONLY[o.engine])
    else:
        pick_device(config.device)


def make_trainer(config, lanes, splits):
    check(config, lanes)
    return ENGINES[config.options.engine](config, lanes, splits)


class EngineTrainers:
    """The trainers of --engine (experiment.entry.Trainers): one per folder, or one for all lanes."""
    partition = staticmethod(partition_lanes)
    check = staticmethod(check)
    make = staticmethod(make_trainer)


ENGINE_TRAINERS = EngineTrainers()
