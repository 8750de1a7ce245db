"""--engine vmap: every lane (networks x dropout rates x seeds) as one torch.func program.

Each lane's model is built as the tutorial engine builds it (torch.manual_seed(seed), then
build_model), so inits match; their parameters are stacked along a leading lane axis
(torch.func.stack_module_state) and one step computes every lane's gradients at once with
vmap(grad_and_value(...), randomness="different") over functional_call of a LeNet that takes the
dropout rate as an input (torch_ref.models.RateLeNet). One Adam updates the stacked tensors: Adam is
elementwise, so that is one Adam per lane. Lanes train on their own batch orders.

The masks of all lanes come from one RNG stream (the default generators as the last lane's init
left them), kept and resumed like a tutorial lane's. Snapshots unstack to per-lane model and
optimizer states in the tutorial engine's layout, so checkpoints evaluate with torch_ref.evaluate
and train states hold the same fields (the shared stream in every lane's "rng").
"""
import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from experiment.metrics import check_names
from experiment.split import EVAL_BATCH, batch_slices
from torch_ref.engines.metrics import epoch_metrics, fetch_lanes
from torch_ref.models import RateLeNet, build_model
from torch_ref.trainer import LaneStates, LaneTrainer, RngStreams, batch_metrics, eval_metrics, to_nchw


def lane_optimizer_state(stacked, lane):
    """One lane's Adam state_dict from the stacked optimizer's: its slice of every per-parameter
    tensor; the step count is shared."""
    return {"state": {i: {k: (v if k == "step" else v[lane]).clone() for k, v in s.items()}
                      for i, s in stacked["state"].items()},
            "param_groups": copy.deepcopy(stacked["param_groups"])}


def stacked_optimizer_state(per_lane):
    """The stacked optimizer's state_dict from per-lane ones (lane_optimizer_state's inverse)."""
    first = per_lane[0]
    return {"state": {i: {k: v if k == "step" else torch.stack([s["state"][i][k] for s in per_lane])
                          for k, v in first["state"][i].items()} for i in first["state"]},
            "param_groups": first["param_groups"]}


class VmapTrainer(LaneTrainer):
    deterministic = False
    adam = "fast"

    def __init__(self, config, lanes, splits, dtype=torch.float32):
        super().__init__(config, lanes, splits, dtype)
        inits = []
        for lane in self.lanes:  # each init drawn as the tutorial engine draws it
            torch.manual_seed(lane.seed)
            inits.append(build_model(lane.model, lane.dropout_rate).state_dict())
        self.rng = RngStreams(self.dev)
        models = [RateLeNet().to(device=self.dev, dtype=dtype) for _ in inits]  # one class, as stacking needs
        for model, init in zip(models, inits):
            model.load_state_dict(init)
        params, _ = stack_module_state(models)  # the networks hold no buffers
        self.params = {k: v.detach() for k, v in params.items()}  # gradients come from torch.func
        self.opt = self.make_optimizer(self.params.values())
        self.rates = torch.tensor([lane.dropout_rate for lane in self.lanes], dtype=dtype, device=self.dev)
        base = RateLeNet().to("meta")

        def lane_loss(params, x, y, rate):
            logits = functional_call(base, params, (x, rate))
            loss = F.cross_entropy(logits, y)
            return loss, batch_metrics(logits, y, loss)

        self.grads_and_metrics = vmap(grad_and_value(lane_loss, has_aux=True), randomness="different")
        self.lane_logits = vmap(lambda params, x: functional_call(base, params, (x,)), in_dims=(0, None))
        self.val_set = to_nchw(splits.val_x).to(self.dev, dtype), torch.from_numpy(splits.val_y).to(self.dev)
        self.train_set = self.train_x, self.train_y

    def train_epoch(self, epoch, batches):
        return epoch_metrics(self.train_steps(epoch, batches), batches.sizes)

    def train_steps(self, epoch, batches):
        """One epoch of every lane: per-step metrics {name: host array [lanes, steps]}."""
        orders = torch.from_numpy(batches.orders).to(self.dev)
        name = "+".join(dict.fromkeys(lane.folder for lane in self.lanes))
        with self.rng.active():
            steps = [self.step(orders[:, s]) for s in self.progress_bar(name, epoch, batches.slices)]
        return {k: torch.stack([m[k] for m in steps], dim=1).cpu().numpy() for k in steps[0]}

    def step(self, idx):
        """One Adam step of every lane, lane i on the training images idx[i]; metrics [lanes]."""
        x, y = self.train_x[idx], self.train_y[idx]
        grads, (_, metrics) = self.grads_and_metrics(self.params, x, y, self.rates)
        for k, p in self.params.items():
            p.grad = grads[k]
        self.opt.step()
        return metrics

    @torch.no_grad()
    def evaluate(self, images, labels, split):
        batches = batch_slices(len(images), EVAL_BATCH)
        logits = torch.cat([self.lane_logits(self.params, images[s]) for s in batches], dim=1)
        return check_names(fetch_lanes([eval_metrics(lane, labels, split) for lane in logits]), split)

    def snapshot(self):
        """Per lane, what TorchLane.state() holds, in its layout."""
        opt, rng = self.opt.state_dict(), self.rng.saved()
        return LaneStates({"model": {k: v[i].clone() for k, v in self.params.items()},
                           "optimizer": lane_optimizer_state(opt, i), **rng} for i in range(len(self.lanes)))

    def load_states(self, states):
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(torch.stack([s["model"][k] for s in states]))
        self.opt.load_state_dict(stacked_optimizer_state([s["optimizer"] for s in states]))
        self.rng.load(states[0])
