"""--engine cudagraph (CUDA only): the fast engine with each lane's whole training step (forward,
backward, Adam) captured once as a torch.cuda.CUDAGraph and replayed for every full batch, following
PyTorch's "whole network capture" recipe:

- the graph reads its batch through a static index buffer: each batch's indices are copied into it
  and the graph gathers the images and labels from the training set on the device;
- Adam is capturable (its step count lives on the device and is advanced inside the graph);
- before capturing, a lane runs WARMUP_STEPS eager steps on a side stream (cuBLAS/cuDNN set-up,
  Adam's state); they are real training steps on real batches, counted like any other;
- the partial last batch, of another shape, runs eagerly;
- dropout in a replay draws fresh masks: the graph reads the CUDA generator's seed and offset at
  every replay and advances the offset, so setting a lane's generator state before its replays
  (as the tutorial engine does) keeps each lane's own stream of masks.
"""
import torch

from experiment.errors import UserError
from torch_ref.engines.fast import FastTrainer
from torch_ref.trainer import pick_device

WARMUP_STEPS = 3  # as in PyTorch's CUDA graphs examples


class LaneGraph:
    """One lane's captured step: its static index buffer, the graph and its static outputs."""

    def __init__(self, batch_size, device):
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.graph, self.out, self.eager_steps = None, None, 0


class CudaGraphTrainer(FastTrainer):

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        if pick_device(config.device).type != "cuda":
            raise UserError(f"--engine cudagraph needs a CUDA device; this run's device is {config.device} "
                            f"(use --device gpu on a machine with CUDA, or --engine fast)")
        super().__init__(config, lanes, splits, dtype)
        self.side_stream = torch.cuda.Stream(self.dev)
        self.graphs = [LaneGraph(self.batch_size, self.dev) for _ in self.lanes]

    def make_optimizer(self, params):
        return torch.optim.Adam(params, lr=self.config.lr, fused=True, capturable=True)

    def step(self, lane_index, idx):
        g = self.graphs[lane_index]
        if len(idx) != self.batch_size:  # the partial last batch
            return super().step(lane_index, idx)
        if g.graph is None and g.eager_steps < WARMUP_STEPS:
            return self.warmup_step(lane_index, idx)
        g.idx.copy_(idx)
        if g.graph is None:
            self.capture(lane_index)
        g.graph.replay()
        return {k: v.clone() for k, v in g.out.items()}  # the next replay overwrites g.out

    def warmup_step(self, lane_index, idx):
        """An eager step on the side stream, ordered after and before the main stream's work."""
        main = torch.cuda.current_stream(self.dev)
        self.side_stream.wait_stream(main)
        with torch.cuda.stream(self.side_stream):
            out = super().step(lane_index, idx)
        main.wait_stream(self.side_stream)
        self.graphs[lane_index].eager_steps += 1
        return out

    def capture(self, lane_index):
        """Record the lane's step on its static index buffer (capturing runs nothing: the caller
        replays it for this batch). Gradients set to None first, so backward allocates them in the
        graph's private memory pool. 'thread_local': the writer thread may be saving an earlier
        epoch's files meanwhile, which must not invalidate the capture."""
        g = self.graphs[lane_index]
        self.torch_lanes[lane_index].opt.zero_grad(set_to_none=True)
        g.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g.graph, capture_error_mode="thread_local"):
            g.out = super().step(lane_index, g.idx)

    def load_states(self, states):
        """Loading replaces the optimiser's state tensors, which a captured graph would still
        point to: capture again after a load."""
        super().load_states(states)
        self.graphs = [LaneGraph(self.batch_size, self.dev) for _ in self.lanes]
