"""--engine cudagraph (CUDA only): the fast engine with each lane's whole training step (forward,
backward, Adam) captured once as a CUDA graph and replayed for every full batch (engines.graphs).
Setting a lane's generator state before its replays (as the tutorial engine does) keeps each lane's
own stream of dropout masks."""
import functools

import torch

from torch_ref.engines.fast import FastTrainer
from torch_ref.engines.graphs import GraphedStep, require_cuda


class CudaGraphTrainer(FastTrainer):
    adam = "graph"

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        require_cuda(config, "cudagraph", instead="fast")
        super().__init__(config, lanes, splits, dtype)
        self.graphs = self.new_graphs()

    def new_graphs(self):
        eager = super().step
        return [GraphedStep(functools.partial(eager, i), (self.batch_size,), self.dev,
                            functools.partial(lane.opt.zero_grad, set_to_none=True))
                for i, lane in enumerate(self.torch_lanes)]

    def step(self, lane_index, idx):
        return self.graphs[lane_index](idx)

    def load_states(self, states):
        """Loading replaces the optimiser's state tensors, which a captured graph would still
        point to: capture again after a load."""
        super().load_states(states)
        self.graphs = self.new_graphs()
