"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, the
checkpoint with the best validation loss is kept.

A trainer (experiment.trainer.Trainer) trains several lanes at once. After every epoch each lane's
best/last checkpoints and history.json are written, then the train state (all of the trainer's
lanes in one file): that last write is the commit point a resumed run continues from, so a kill
anywhere loses at most the epochs not yet committed. The writes go through a writer
(experiment.writer), which may run them on another thread while the next epoch trains.
"""
import copy
import os
import time

import numpy as np

from experiment.errors import Diverged, UserError
from experiment.history import add_epoch, save_history
from experiment.plots import plot_curves
from experiment.split import epoch_order
from experiment.stop import STOP_SIGNALS, Abandoned, StopRequest  # noqa: F401  (StopRequest: the loop's stop)

TRAIN_STATE = "train_state"


def check_out_dir(path, overwrite, resume=False):
    """Refuse to clobber a finished or partial run unless told to; creates nothing."""
    if os.path.exists(os.path.join(path, "history.json")) and not (overwrite or resume):
        raise UserError(f"{path} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --out")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"cannot write to output folder {path} (it is a file)")


def prepare_out_dir(path, overwrite, resume=False, folders=None):
    """Create `path` (noting what it creates in `folders`, an experiment.lock.NewFolders); refuse to
    clobber a finished or partial run unless told to."""
    check_out_dir(path, overwrite, resume)
    try:
        if folders is not None:
            folders.make(path)
        else:
            os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to output folder {path} ({e.strerror})") from None


def train_and_evaluate(trainer, n_train, epochs, histories, out_dirs, state_path, writer, start_epoch=1,
                       log=print, stop=None):
    """Train epochs start_epoch..epochs. histories[i] and out_dirs[i] belong to trainer.lanes[i]; the
    train state goes to state_path. A pipelined trainer gets epoch N+1 queued before epoch N's
    results are read, so its device never waits for the host. Returns the histories.

    `stop` (an experiment.stop.StopRequest) ends the run with Interrupted at the next safe point
    once a stop is requested: a batch-by-batch trainer between two batches (it checks
    trainer.stop_requested() and raises Abandoned), a pipelined one as soon as the loop waits for
    it (its dispatches and waits run through stop.run). The epoch in progress is then dropped; the
    finished ones are saved, and a resumed run redoes the dropped one from its start."""
    requested = (lambda: stop is not None and stop.requested)  # noqa: E731
    waited = stop.run if stop is not None else (lambda fn: fn())
    trainer.stop_requested = requested
    saved, last_done = start_epoch - 1, None
    if stop is not None:
        stop.training, stop.saved = True, saved
        if requested():  # asked while an earlier trainer of the run finished: its epochs are saved
            raise stop.interrupted()

    def dispatch(epoch):
        t0 = time.perf_counter()
        orders = np.stack([epoch_order(n_train, lane.seed, epoch) for lane in trainer.lanes])
        try:
            if trainer.pipelined:  # returns once queued, but the first call compiles
                return waited(lambda: trainer.start_epoch(epoch, orders)), t0
            return trainer.start_epoch(epoch, orders), t0
        except Diverged as e:
            raise diverged_at(e, epoch) from None

    def diverged_at(e, epoch):
        return e.at(epoch, out_dirs[e.lane], trainer.lanes[e.lane].seed)

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
            record_epoch(trainer, run.snapshot, epoch, epochs, metrics, seconds, histories, out_dirs, state_path,
                         writer, log, stop)
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
    for lane, history, out in zip(trainer.lanes, histories, out_dirs):
        plot_curves({"": history}, os.path.join(out, "curves.png"),
                    title=f"{history['framework']} {lane.group} (seed {lane.seed})")
    return histories


def record_epoch(trainer, snapshot, epoch, epochs, metrics, seconds, histories, out_dirs, state_path, writer, log,
                 stop=None):
    """Add the epoch to every lane's history and queue its writes: per lane best (if it is), last and
    history.json, then the train state, in that order, then its log lines: a line is printed once its
    epoch is on disk, so the log never shows an epoch a kill would lose (and `stop` hears of it:
    what a stop at once says is saved)."""
    compiled = trainer.compile_stats()
    lines = []
    # The lanes of one trainer share the epoch's time (one program, or trained one after another).
    shared = f" (all {len(trainer.lanes)} lanes)" if len(trainer.lanes) > 1 else ""
    for i, (lane, history, out) in enumerate(zip(trainer.lanes, histories, out_dirs)):
        row = {"epoch": epoch, **{k: float(v[i]) for k, v in metrics.items()}, "seconds": round(seconds, 3)}
        is_best = add_epoch(history, row)
        if compiled is not None:  # apart from the epochs' seconds: what compiling cost this process
            history["compile"] = compiled
        meta = dict(epoch=epoch, val_loss=row["val_loss"], val_acc=row["val_acc"])
        if is_best:
            writer.submit(trainer.save, snapshot, i, os.path.join(out, "best" + trainer.ckpt_ext), meta)
        writer.submit(trainer.save, snapshot, i, os.path.join(out, "last" + trainer.ckpt_ext), meta)
        writer.submit(save_history, copy.deepcopy(history), os.path.join(out, "history.json"))
        lines.append(f"[{history['framework']} {lane.group} seed {lane.seed}] epoch {epoch}/{epochs}  "
                     f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
                     f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}%  {seconds:.1f}s{shared}"
                     f"{'  *best' if is_best else ''}")
    writer.submit(trainer.save_train_state, snapshot, state_path, epoch, copy.deepcopy(histories))
    if stop is not None:
        writer.submit(stop.commit, epoch)
    for line in lines:
        writer.submit(log, line)
    writer.end_epoch()


def finite_or_raise(losses, first_step=0):
    """Raise Diverged for the first lane/step whose loss is NaN or Inf. losses: [lanes, steps]."""
    bad = ~np.isfinite(np.asarray(losses, dtype=np.float64))
    if bad.any():
        lane, step = np.argwhere(bad)[0]
        raise Diverged(int(lane), first_step + int(step) + 1, float(np.asarray(losses)[lane, step]))
