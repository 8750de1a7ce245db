"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, and its
results go to the records (experiment.records), which keep the best checkpoint and write the files.

A trainer (experiment.trainer.Trainer) trains several lanes at once; a pipelined one gets epoch N+1
queued before epoch N's results are read, so its device never waits for the host.
"""
import time

from experiment.errors import Diverged
from experiment.split import EpochBatches
from experiment.stop import STOP_SIGNALS, Abandoned, StopRequest  # noqa: F401  (StopRequest: the loop's stop)


def train_and_evaluate(trainer, records, epochs, stop=None):
    """Train epochs records.first_epoch..epochs of the trainer's lanes, each epoch handed to
    `records` (an experiment.records.TrainerRecords of the same lanes, in the same order).

    `stop` (an experiment.stop.StopRequest) ends the run with Interrupted at the next safe point
    once a stop is requested: a batch-by-batch trainer between two batches (it checks
    trainer.stop_requested() and raises Abandoned), a pipelined one as soon as the loop waits for
    it (its dispatches and waits run through stop.run). The epoch in progress is then dropped; the
    finished ones are saved, and a resumed run redoes the dropped one from its start."""
    requested = (lambda: stop is not None and stop.requested)  # noqa: E731
    waited = stop.run if stop is not None else (lambda fn: fn())
    trainer.stop_requested = requested
    start_epoch = records.first_epoch
    saved, last_done = start_epoch - 1, None
    if stop is not None:
        stop.training, stop.saved = True, saved
        if requested():  # asked while an earlier trainer of the run finished: its epochs are saved
            raise stop.interrupted()

    def dispatch(epoch):
        t0 = time.perf_counter()
        batches = EpochBatches.of_lanes(trainer.lanes, trainer.n_train, epoch, trainer.batch_size)
        try:
            if trainer.pipelined:  # returns once queued, but the first call compiles
                return waited(lambda: trainer.start_epoch(epoch, batches)), t0
            return trainer.start_epoch(epoch, batches), t0
        except Diverged as e:
            raise diverged_at(e, epoch) from None

    def diverged_at(e, epoch):
        return e.at(epoch, records.lanes[e.lane].folder, trainer.lanes[e.lane].seed)

    epoch = start_epoch
    try:
        if stop is not None:
            stop.epoch = epoch
        pending = dispatch(start_epoch) if start_epoch <= epochs else None
        while pending:
            run, t_start = pending
            more = epoch < epochs and not requested()
            ahead = dispatch(epoch + 1) if more and trainer.pipelined else None
            try:
                if hasattr(run, "wait"):  # an epoch still on the device
                    waited(run.wait)
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
            if requested():
                raise stop.interrupted(saved=epoch)
            epoch += 1
            if stop is not None:
                stop.epoch = epoch
            pending = ahead or dispatch(epoch)
    except Abandoned:  # the epoch in progress is dropped; the finished ones are saved (once the writer is flushed)
        raise stop.interrupted(saved=saved, during=epoch) from None
    records.finish()
