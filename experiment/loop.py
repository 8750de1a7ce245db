"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, the
checkpoint with the best validation loss is kept.

A trainer trains one or more seeds ("lanes") of one model at once and supplies:

    trainer.seeds                         # the lanes' seeds
    trainer.train_epoch(epoch, orders)    # orders[lane] = image indices -> (losses[lane], accs[lane]);
                                          #   raises Diverged on a NaN/Inf loss
    trainer.validate()                    # on the validation set it was built with -> (losses[lane], accs[lane])
    trainer.save(lane, path, **meta)      # one lane's checkpoint, written atomically
    trainer.save_train_state(path, epoch, histories)   # everything needed to resume, all lanes
    trainer.load_train_state(path) -> (epoch, histories)
    trainer.ckpt_ext                      # '.pt', '.msgpack'

After every epoch the lanes' best/last checkpoints and history.json are written, then the
train state (`train_state.<ext>` in the model's folder): that last write is the commit point a
resumed run continues from, so a kill anywhere loses at most the epoch in progress.
"""
import os
import signal
import time

import numpy as np

from experiment.errors import Diverged, Interrupted, UserError
from experiment.history import add_epoch, save_history
from experiment.plots import plot_curves
from experiment.split import epoch_order

TRAIN_STATE = "train_state"


def prepare_out_dir(path, overwrite, resume=False):
    """Create `path`; refuse to clobber a finished or partial run unless told to."""
    if os.path.exists(os.path.join(path, "history.json")) and not (overwrite or resume):
        raise UserError(f"{path} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --out")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to output folder {path} ({e.strerror})") from None


class StopRequest:
    """First Ctrl-C: finish the epoch in progress, save, stop. Second: stop at once (the last
    finished epoch is already saved)."""

    def __init__(self, log):
        self.requested, self.log, self.previous = False, log, None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.log("interrupt: finishing this epoch and saving (Ctrl-C again to stop now)")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def train_and_evaluate(trainer, splits, epochs, histories, out_dirs, state_dir, start_epoch=1, log=print,
                       stop=None):
    """Train epochs start_epoch..epochs. histories[lane] and out_dirs[lane] belong to
    trainer.seeds[lane]; the train state goes to state_dir. `stop` (a StopRequest) ends the run
    after the epoch in progress, with Interrupted. Returns the histories."""
    n = len(splits.train_x)
    state_path = os.path.join(state_dir, TRAIN_STATE + trainer.ckpt_ext)
    saved = start_epoch - 1
    try:
        for epoch in range(start_epoch, epochs + 1):
            t0 = time.perf_counter()
            orders = np.stack([epoch_order(n, seed, epoch) for seed in trainer.seeds])
            try:
                train_loss, train_acc = trainer.train_epoch(epoch, orders)
            except Diverged as e:
                raise e.at(epoch, out_dirs[e.lane], trainer.seeds[e.lane]) from None
            val_loss, val_acc = trainer.validate()
            seconds = time.perf_counter() - t0
            for lane, (seed, history, out) in enumerate(zip(trainer.seeds, histories, out_dirs)):
                row = dict(epoch=epoch, train_loss=float(train_loss[lane]), train_acc=float(train_acc[lane]),
                           val_loss=float(val_loss[lane]), val_acc=float(val_acc[lane]))
                is_best = add_epoch(history, **row, seconds=round(seconds, 3))
                meta = dict(epoch=epoch, val_loss=row["val_loss"], val_acc=row["val_acc"])
                if is_best:
                    trainer.save(lane, os.path.join(out, "best" + trainer.ckpt_ext), **meta)
                trainer.save(lane, os.path.join(out, "last" + trainer.ckpt_ext), **meta)
                save_history(history, os.path.join(out, "history.json"))
                log(f"[{history['framework']} {history['model']} seed {seed}] epoch {epoch}/{epochs}  "
                    f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:.2f}%  "
                    f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}%  {seconds:.1f}s"
                    f"{'  *best' if is_best else ''}")
            trainer.save_train_state(state_path, epoch, histories)
            saved = epoch
            if stop is not None and stop.requested:
                raise Interrupted(epoch)
    except KeyboardInterrupt:  # a second Ctrl-C: stop now; the last finished epoch is on disk
        raise Interrupted(saved, during=saved + 1) from None
    for seed, history, out in zip(trainer.seeds, histories, out_dirs):
        plot_curves({"": history}, os.path.join(out, "curves.png"),
                    title=f"{history['framework']} {history['model']} (seed {seed})")
    return histories


def finite_or_raise(losses, first_step=0):
    """Raise Diverged for the first lane/step whose loss is NaN or Inf. losses: [lanes, steps]."""
    bad = ~np.isfinite(np.asarray(losses, dtype=np.float64))
    if bad.any():
        lane, step = np.argwhere(bad)[0]
        raise Diverged(int(lane), first_step + int(step) + 1, float(np.asarray(losses)[lane, step]))
