"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, the
checkpoint with the best validation loss is kept.

A trainer trains one or more seeds ("lanes") of one model at once and supplies:

    trainer.seeds                         # the lanes' seeds
    trainer.train_epoch(epoch, orders)    # orders[lane] = image indices -> (losses[lane], accs[lane])
    trainer.evaluate(x, y)                # -> (losses[lane], accs[lane]), deterministic
    trainer.save(lane, path, **meta)      # one lane's checkpoint, written atomically
    trainer.ckpt_ext                      # '.pt', '.msgpack'
"""
import os
import time

import numpy as np

from experiment.errors import UserError
from experiment.history import add_epoch, save_history
from experiment.plots import plot_curves
from experiment.split import epoch_order


def prepare_out_dir(path, overwrite):
    """Create `path`; refuse to clobber a finished or partial run unless told to."""
    if os.path.exists(os.path.join(path, "history.json")) and not overwrite:
        raise UserError(f"{path} already holds a run; pass --overwrite to replace it or choose another --out")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to output folder {path} ({e.strerror})") from None


def train_and_evaluate(trainer, splits, epochs, histories, out_dirs, log=print):
    """histories[lane] and out_dirs[lane] belong to trainer.seeds[lane]; returns the histories."""
    n = len(splits.train_x)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        orders = np.stack([epoch_order(n, seed, epoch) for seed in trainer.seeds])
        train_loss, train_acc = trainer.train_epoch(epoch, orders)
        val_loss, val_acc = trainer.evaluate(splits.val_x, splits.val_y)
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
    for seed, history, out in zip(trainer.seeds, histories, out_dirs):
        plot_curves({"": history}, os.path.join(out, "curves.png"),
                    title=f"{history['framework']} {history['model']} (seed {seed})")
    return histories
