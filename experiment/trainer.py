"""What a framework supplies to the shared training loop (experiment.loop): a Trainer trains a set of
lanes at once, each lane one network with one dropout rate and one seed.

The loop asks for an epoch with start_epoch(); a trainer that runs asynchronously (pipelined) may
return before its device has finished, so the loop can queue the next epoch before it reads this
one's metrics. Checkpoints and train states are written from an EpochRun's snapshot, possibly on
another thread while later epochs train, so a snapshot must not change once taken.
"""
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from experiment.errors import UserError


@dataclass(frozen=True)
class Lane:
    model: str            # the network: 'baseline' or 'dropout'
    dropout_rate: float   # the rate its dropout layers use (0 for the BaseLine)
    seed: int             # init, dropout masks and batch order
    group: str            # its folder under OUT: 'baseline', 'dropout', ...

    def record(self):
        return {"model": self.model, "dropout_rate": self.dropout_rate, "seed": self.seed, "group": self.group}


def check_saved_lanes(path, saved, lanes):
    """Raise UserError unless the lanes a train state was saved for (records; older formats hold
    fewer fields) are these lanes."""
    keys = set().union(*saved) if saved else set()
    want = [{k: v for k, v in lane.record().items() if k in keys} for lane in lanes]
    if saved != want:
        name = lambda xs: ", ".join(f"{x.get('group', x['model'])} seed {x['seed']}" for x in xs)  # noqa: E731
        raise UserError(f"{path} holds lanes {name(saved)}, not this run's {name(want)}")


class EpochRun(Protocol):
    snapshot: object      # every lane's state after this epoch, unchanged from here on
    # Optional: wait() -> None, waits for the epoch's work on the device; the loop runs it so that a
    # stop request ends the wait at once (experiment.stop.StopRequest.run).

    def metrics(self) -> dict[str, np.ndarray]:
        """{'train_loss': [lanes], ..., 'val_acc': [lanes]} (experiment.metrics names); waits for
        the epoch to finish; raises Diverged(lane, step, value) on a NaN/Inf training loss."""


class DoneEpoch:
    """The EpochRun of a trainer that has finished the epoch by the time start_epoch returns."""

    def __init__(self, metrics, snapshot):
        self._metrics, self.snapshot = metrics, snapshot

    def metrics(self):
        return self._metrics


class Trainer(Protocol):
    lanes: list[Lane]
    device: str           # e.g. 'cpu', 'gpu:NVIDIA H200 x2', for history.json
    versions: dict        # library versions, for history.json
    ckpt_ext: str         # '.pt', '.msgpack'
    pipelined: bool       # start_epoch returns before the device has finished

    def start_epoch(self, epoch: int, orders: np.ndarray) -> EpochRun:
        """Train one epoch (orders[lane] = that lane's image order), then validate. A trainer that
        trains batch by batch checks stop_requested() between batches and raises
        experiment.stop.Abandoned once it is true (the loop sets stop_requested)."""

    def save(self, snapshot, lane: int, path: str, meta: dict) -> None:
        """One lane's checkpoint from a snapshot, written atomically."""

    def save_train_state(self, snapshot, path: str, epoch: int, histories: list) -> None:
        """Everything a resumed run needs, all lanes, written atomically (the commit point)."""

    def load_train_state(self, path: str) -> tuple[int, list]:
        """(last saved epoch, histories) from a train state; the lanes continue from it exactly."""

    def compile_stats(self) -> dict | None:
        """What compiling cost this process so far ({'seconds', 'cache_hits', 'cache_misses'}), kept
        in history.json apart from the epochs' seconds; None where nothing is compiled."""
