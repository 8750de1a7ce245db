"""--engine vmap-cudagraph (CUDA only): the vmap engine's step (every lane's forward, backward and
Adam as one torch.func program) captured once as a CUDA graph and replayed for every full batch
(engines.graphs). One graph for all lanes, so a step costs one launch however many lanes there are:
the vmap engine itself is bound by launching its many small kernels. Lanes' state stacking, RNG
stream, snapshots and train states are the vmap engine's; the masks of a replay come from the CUDA
generator as the vmap engine's eager steps draw them."""
from torch_ref.engines.graphs import Captured, GraphedStep
from torch_ref.engines.vmap import VmapTrainer


class VmapGraphTrainer(Captured, VmapTrainer):
    engine, instead = "vmap-cudagraph", "vmap"
    adam = "graph"

    def new_capture(self):
        """One graph for every lane's step, on the vmap engine's step."""
        return GraphedStep(super().step, (len(self.lanes), self.batch_size), self.dev, self.release_grads)

    def release_grads(self):
        for p in self.params.values():
            p.grad = None

    def step(self, idx):
        return self.captured(idx)
