"""A training step captured once as a torch.cuda.CUDAGraph and replayed, following PyTorch's "whole
network capture" recipe; used by --engine cudagraph (one lane's step) and vmap-cudagraph (every
lane's step as one torch.func program):

- the graph reads its batch through a static index buffer: each batch's indices are copied into it
  and the graph gathers the images and labels from the training set on the device;
- Adam is capturable (its step count lives on the device and is advanced inside the graph);
- before capturing, WARMUP_STEPS eager steps run on a side stream (cuBLAS/cuDNN set-up, Adam's
  state); they are real training steps on real batches, counted like any other;
- a batch of another shape (the partial last one) runs eagerly;
- dropout in a replay draws fresh masks: the graph reads the CUDA generator's seed and offset at
  every replay and advances the offset, so the generator state set before the replays decides them.
"""
import torch

from experiment.errors import UserError
from torch_ref.trainer import pick_device

WARMUP_STEPS = 3  # as in PyTorch's CUDA graphs examples


def require_cuda(config, engine, instead):
    """UserError unless the run's device is a CUDA one."""
    if pick_device(config.device).type != "cuda":
        raise UserError(f"--engine {engine} needs a CUDA device; this run's device is {config.device} "
                        f"(use --device gpu on a machine with CUDA, or --engine {instead})")


class GraphedStep:
    """step(idx) -> {metric: device tensor}, eager for WARMUP_STEPS calls, then captured on its
    static index buffer (of idx_shape) and replayed. release_grads() runs before the capture: the
    gradients are then allocated in the graph's private memory pool by backward."""

    def __init__(self, step, idx_shape, device, release_grads):
        self.step, self.release_grads, self.device = step, release_grads, device
        self.idx = torch.zeros(idx_shape, dtype=torch.long, device=device)
        self.side_stream = torch.cuda.Stream(device)
        self.graph, self.out, self.eager_steps = None, None, 0

    def __call__(self, idx):
        if idx.shape != self.idx.shape:  # the partial last batch
            return self.step(idx)
        if self.graph is None and self.eager_steps < WARMUP_STEPS:
            return self.warmup(idx)
        self.idx.copy_(idx)
        if self.graph is None:
            self.capture()
        self.graph.replay()
        return {k: v.clone() for k, v in self.out.items()}  # the next replay overwrites self.out

    def warmup(self, idx):
        """An eager step on a side stream, ordered after and before the main stream's work."""
        main = torch.cuda.current_stream(self.device)
        self.side_stream.wait_stream(main)
        with torch.cuda.stream(self.side_stream):
            out = self.step(idx)
        main.wait_stream(self.side_stream)
        self.eager_steps += 1
        return out

    def capture(self):
        """Record the step on the static index buffer (capturing runs nothing: the caller replays
        it for this batch). 'thread_local': the writer thread may be saving an earlier epoch's files
        meanwhile, which must not invalidate the capture."""
        self.release_grads()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.out = self.step(self.idx)


class Captured:
    """What a CUDA-graph engine adds to the engine it replays (a mixin before that engine's class):
    it needs CUDA, captures its steps once built (new_capture(), held in self.captured) and again
    after every load, which replaces the optimiser's state tensors a captured graph still points to.
    `engine` names it, `instead` the engine to use without CUDA."""
    engine: str
    instead: str

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        require_cuda(config, self.engine, instead=self.instead)
        super().__init__(config, lanes, splits, dtype)
        self.captured = self.new_capture()

    def load_states(self, states):
        super().load_states(states)
        self.captured = self.new_capture()
