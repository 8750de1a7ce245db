"""--engine fast: the tutorial engine's maths with no host sync inside an epoch. Each lane still
trains alone, in turn, from its own RNG state; its per-step metrics stay on the device and are read
once at the end of the epoch, where the NaN/Inf check runs. Adam is fused on CUDA and foreach on
CPU; deterministic algorithms are off (cuDNN picks the fastest)."""
import torch

from experiment.metrics import check_names
from experiment.split import EVAL_BATCH, batch_slices
from torch_ref.engines.metrics import epoch_metrics, fetch_lanes
from torch_ref.trainer import TorchTrainer, batch_metrics, eval_metrics, to_nchw


class FastTrainer(TorchTrainer):
    deterministic = False
    adam = "fast"

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        super().__init__(config, lanes, splits, dtype)
        # What evaluate() reads: the images on the device once, not every epoch (the training set's are there).
        self.val_set = to_nchw(splits.val_x).to(self.dev, dtype), torch.from_numpy(splits.val_y).to(self.dev)
        self.train_set = self.train_x, self.train_y

    def train_epoch(self, epoch, batches):
        return epoch_metrics(self.train_steps(epoch, batches), batches.sizes)

    def train_steps(self, epoch, batches):
        """Every lane's epoch, in turn: per-step metrics {name: host array [lanes, steps]}."""
        orders = torch.from_numpy(batches.orders).to(self.dev)  # uploaded before any step, so no copy waits for one
        per_lane = []
        for i, (lane, order) in enumerate(zip(self.torch_lanes, orders)):
            lane.model.train()
            with lane.rng.active():
                steps = [self.step(i, order[s]) for s in self.progress_bar(self.lanes[i].folder, epoch, batches.slices)]
            per_lane.append({k: torch.stack([m[k] for m in steps]) for k in steps[0]})
        return fetch_lanes(per_lane)

    def step(self, lane_index, idx):
        """One Adam step of a lane on the training images `idx` (on the device); its batch
        metrics, left on the device."""
        lane = self.torch_lanes[lane_index]
        x, y = torch.index_select(self.train_x, 0, idx), torch.index_select(self.train_y, 0, idx)
        lane.opt.zero_grad()
        out = lane.net(x)
        loss = self.loss_fn(out, y)
        loss.backward()
        lane.opt.step()
        return {k: v.detach() for k, v in batch_metrics(out, y, loss).items()}

    @torch.no_grad()
    def evaluate(self, images, labels, split):
        """The tutorial engine's evaluation, with the images kept on the device and one read."""
        per_lane = []
        for lane in self.torch_lanes:
            lane.model.eval()
            batches = batch_slices(len(images), EVAL_BATCH)
            logits = torch.cat([lane.model(images[s]) for s in batches])
            per_lane.append(eval_metrics(logits, labels, split))
        return check_names(fetch_lanes(per_lane), split)
