"""What a framework supplies to the shared training loop (experiment.loop): a Trainer trains a set of
lanes (experiment.lanes.Lane) at once and only computes; the records (experiment.records) write
its results with the framework's codec (experiment.checkpoints.Codec).

The loop asks for an epoch with start_epoch(); a trainer that runs asynchronously (pipelined) may
return before its device has finished, so the loop can queue the next epoch before it reads this
one's metrics. Checkpoints and train states are written from an EpochRun's snapshot, possibly on
another thread while later epochs train, so a snapshot must not change once taken.
"""
from typing import Protocol

import numpy as np

from experiment.lanes import Lane
from experiment.split import EpochBatches


class Snapshot(Protocol):
    """Every lane's state after an epoch, unchanged from then on."""

    def params(self, lane: int):
        """One lane's weights, as its checkpoint holds them (what Codec.write_params writes)."""

    def state(self):
        """Every lane's whole state, as the train state holds it (what Codec.write_state writes)."""


class EpochRun(Protocol):
    snapshot: Snapshot

    def wait(self) -> None:
        """Wait for the epoch's work on the device (a pipelined trainer's; the loop runs it so that a
        stop request ends the wait at once: experiment.stop.StopRequest.run)."""

    def metrics(self) -> dict[str, np.ndarray]:
        """{'train_loss': [lanes], ..., 'val_acc': [lanes]} (experiment.metrics names); waits for
        the epoch to finish; raises Diverged(lane, step, value) on a NaN/Inf training loss."""


class DoneEpoch:
    """The EpochRun of a trainer that has finished the epoch by the time start_epoch returns."""

    def __init__(self, metrics, snapshot):
        self._metrics, self.snapshot = metrics, snapshot

    def wait(self):
        """Nothing to wait for: the epoch is done."""

    def metrics(self):
        return self._metrics


class Trainer(Protocol):
    lanes: list[Lane]
    n_train: int          # training images (each lane's epoch order is a permutation of them)
    batch_size: int
    device: str           # e.g. 'cpu', 'gpu:NVIDIA H200 x2', for history.json
    versions: dict        # library versions, for history.json
    pipelined: bool       # start_epoch returns before the device has finished

    def start_epoch(self, epoch: int, batches: EpochBatches) -> EpochRun:
        """Train one epoch (batches.orders[lane] = that lane's image order), then validate. A
        trainer that trains batch by batch checks between batches whether the process's stop request
        (experiment.stop.current()) was made, and raises experiment.stop.Abandoned once it was."""

    def train_epoch(self, epoch: int, batches: EpochBatches) -> dict[str, np.ndarray]:
        """The epoch's training alone, waited for: {'train_loss': [lanes], 'train_acc': [lanes]}."""

    def validate(self) -> dict[str, np.ndarray]:
        """The validation metrics of the lanes as they are: {'val_loss': [lanes], 'val_acc': [lanes]}."""

    def restore(self, tree) -> None:
        """Continue from a train state's tree (Codec.read_state), bit for bit; ValueError, KeyError
        or RuntimeError where it does not fit these lanes."""

    def compile_stats(self) -> dict | None:
        """What compiling cost this process so far ({'seconds', 'cache_hits', 'cache_misses'}), kept
        in history.json apart from the epochs' seconds; None where nothing is compiled."""
