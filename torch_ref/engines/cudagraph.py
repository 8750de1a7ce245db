"""--engine cudagraph (CUDA only): the fast engine with each lane's whole training step (forward,
backward, Adam) captured once as a CUDA graph and replayed for every full batch (engines.graphs).
Setting a lane's generator state before its replays (as the tutorial engine does) keeps each lane's
own stream of dropout masks."""
import functools

from torch_ref.engines.fast import FastTrainer
from torch_ref.engines.graphs import Captured, GraphedStep


class CudaGraphTrainer(Captured, FastTrainer):
    engine, instead = "cudagraph", "fast"
    adam = "graph"

    def new_capture(self):
        """One graph per lane, on the fast engine's step."""
        eager = super().step
        return [GraphedStep(functools.partial(eager, i), (self.batch_size,), self.dev,
                            functools.partial(lane.opt.zero_grad, set_to_none=True))
                for i, lane in enumerate(self.torch_lanes)]

    def step(self, lane_index, idx):
        return self.captured[lane_index](idx)
