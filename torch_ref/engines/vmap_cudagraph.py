"""--engine vmap-cudagraph (CUDA only): the vmap engine's step (every lane's forward, backward and
Adam as one torch.func program) captured once as a CUDA graph and replayed for every full batch
(engines.graphs). One graph for all lanes, so a step costs one launch however many lanes there are:
the vmap engine itself is bound by launching its many small kernels. Lanes' state stacking, RNG
stream, snapshots and train states are the vmap engine's; the masks of a replay come from the CUDA
generator as the vmap engine's eager steps draw them."""
import torch

from torch_ref.engines.graphs import GraphedStep, require_cuda
from torch_ref.engines.vmap import VmapTrainer


class VmapGraphTrainer(VmapTrainer):
    adam = "graph"

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        require_cuda(config, "vmap-cudagraph", instead="vmap")
        super().__init__(config, lanes, splits, dtype)
        self.graph = self.new_graph()

    def new_graph(self):
        return GraphedStep(super().step, (len(self.lanes), self.batch_size), self.dev, self.release_grads)

    def release_grads(self):
        for p in self.params.values():
            p.grad = None

    def step(self, idx):
        return self.graph(idx)

    def load_states(self, states):
        """A load replaces the optimiser's state tensors, which the captured graph would still
        point to: capture again after a load."""
        super().load_states(states)
        self.graph = self.new_graph()
