"""The tutorial's Train_Eval loop, framework-neutral: each epoch trains then validates, the
checkpoint with the best validation loss is kept. A framework supplies a Trainer:

    trainer.train_epoch(epoch, order) -> (mean train loss, train accuracy)  # order: image indices
    trainer.evaluate(x, y)            -> (mean loss, accuracy)
    trainer.save(path, **meta)        # a checkpoint file, written atomically
    trainer.ckpt_ext                  # '.pt', '.msgpack', ...
"""
import os
import time

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


def train_and_evaluate(trainer, splits, epochs, seed, history, out_dir, log=print):
    n = len(splits.train_x)
    tag = f"[{history['framework']} {history['model']} seed {seed}]"
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = trainer.train_epoch(epoch, epoch_order(n, seed, epoch))
        val_loss, val_acc = trainer.evaluate(splits.val_x, splits.val_y)
        seconds = time.perf_counter() - t0
        is_best = add_epoch(history, epoch=epoch, train_loss=float(train_loss), train_acc=float(train_acc),
                            val_loss=float(val_loss), val_acc=float(val_acc), seconds=round(seconds, 3))
        meta = dict(epoch=epoch, val_loss=float(val_loss), val_acc=float(val_acc))
        if is_best:
            trainer.save(os.path.join(out_dir, "best" + trainer.ckpt_ext), **meta)
        trainer.save(os.path.join(out_dir, "last" + trainer.ckpt_ext), **meta)
        save_history(history, os.path.join(out_dir, "history.json"))
        log(f"{tag} epoch {epoch}/{epochs}  train loss {train_loss:.4f} acc {100 * train_acc:.2f}%  "
            f"val loss {val_loss:.4f} acc {100 * val_acc:.2f}%  {seconds:.1f}s{'  *best' if is_best else ''}")
    plot_curves({"": history}, os.path.join(out_dir, "curves.png"),
                title=f"{history['framework']} {history['model']} (seed {seed})")
    return history
