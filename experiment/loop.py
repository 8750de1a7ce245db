"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, and its
results go to the records (experiment.records), which keep the best checkpoint and write the files.

A trainer (experiment.trainer.Trainer) trains several lanes at once; a pipelined one gets epoch N+1
queued before epoch N's results are read, so its device never waits for the host.
"""
import time

from experiment.errors import Diverged
from experiment.split import EpochBatches
from experiment.stop import Abandoned, current


def train_and_evaluate(trainer, records, epochs, stop=None):
    """Train epochs records.first_epoch..epochs of the trainer's lanes, each epoch handed to
    `records` (an experiment.records.TrainerRecords of the same lanes, in the same order).

    `stop` (an experiment.stop.StopRequest; default: the one that owns this process's signals) ends
    the run with Interrupted at the next safe point once a stop is requested: a batch-by-batch
    trainer between two batches (it raises Abandoned), a pipelined one as soon as the loop waits for
    it (its dispatches and waits run through stop.run). The epoch in progress is then dropped; the
    finished ones are saved, and a resumed run redoes the dropped one from its start."""
    stop = stop or current()
    saved, last_done = records.first_epoch - 1, None
    stop.training_from(saved)

    def start(epoch):
        t0 = time.perf_counter()
        batches = EpochBatches.of_lanes(trainer.lanes, trainer.n_train, epoch, trainer.batch_size)
        try:
            if trainer.pipelined:  # returns once queued, but the first call compiles
                return stop.run(lambda: trainer.start_epoch(epoch, batches)), t0
            return trainer.start_epoch(epoch, batches), t0
        except Diverged as e:
            raise diverged_at(e, epoch) from None

    def diverged_at(e, epoch):
        return e.at(epoch, records.lanes[e.lane].folder, trainer.lanes[e.lane].seed)

    epoch = records.first_epoch
    stop.at_epoch(epoch)
    try:
        pending = start(epoch) if epoch <= epochs else None
        while pending:
            run, t_start = pending
            ahead = start(epoch + 1) if trainer.pipelined and epoch < epochs and not stop.requested else None
            try:
                if trainer.pipelined:  # the epoch is still on the device
                    stop.run(run.wait)
                metrics = run.metrics()
            except Diverged as e:
                raise diverged_at(e, epoch) from None
            t_done = time.perf_counter()
            # Device time of this epoch: from its start, or from the previous epoch's end when it was
            # queued behind it.
            seconds = t_done - max(t_start, last_done or t_start)
            last_done = t_done
            records.record(trainer, run.snapshot, epoch, metrics, seconds)
            saved = epoch
            if epoch == epochs:
                break
            if stop.requested:
                raise stop.interrupted(saved=epoch)
            epoch += 1
            stop.at_epoch(epoch)
            pending = ahead or start(epoch)
    except Abandoned:  # the epoch in progress is dropped; the finished ones are saved (once the writer is flushed)
        raise stop.interrupted(saved=saved, during=epoch) from None
