"""TensorBoard event files beside each lane's history.json, written with TensorBoard's own writer: per
epoch the history's scalars (tags <metric>/<split> such as loss/val, acc/train_eval, and seconds; the
step is the epoch) and the lane's settings as its hyperparameters (the HPARAMS tab). Each lane's folder
is a run of `tensorboard --logdir runs/`.

What TensorBoard shows is the history. A run (fresh or resumed) starts a new event file in each lane's
folder that begins with a restart at epoch 1 (TensorBoard's readers drop what older files hold from
that step on) and the lane's epochs so far, then adds each epoch as the records write it, flushed to
disk before the epoch's train state is committed. So each epoch shows once, whatever a kill cut short:
an epoch written but not committed is redone and replaced, and events lost with a killed process come
back from the history. A fresh run (or --overwrite) removes the folder's older event files.

`tensorboard` is optional (pip install -e ".[tensorboard]"): without it a run says so once and trains on.
"""
import glob
import json
import os
import sys
import time

try:
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams.summary_v2 import hparams_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
except ImportError:
    EventFileWriter = None

from experiment.metrics import METRICS, splits_of

EVENT_FILES = "events.out.tfevents.*"
MISSING = 'warning: tensorboard is not installed, so no TensorBoard events are written (pip install -e ".[tensorboard]")'
_told = []  # whether this process has said MISSING


def scalars(row):
    """{tag: value} of a history row as TensorBoard shows it: <metric>/<split> (loss/train, acc/val, ...) and seconds."""
    values = {f"{m}/{s}": row[f"{s}_{m}"] for s in splits_of(row) for m in METRICS}
    return {**values, "seconds": row["seconds"]}


def hyperparameters(history):
    """A lane's framework and recorded settings (history["config"]), each a bool, number or string."""
    settings = {"framework": history["framework"], **history["config"]}
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in settings.items()}


class LaneBoard:
    """A lane's event file in its folder: show(history) writes the epochs it has not written yet."""

    def __init__(self, folder):
        self.folder, self.events, self.shown = folder, None, 0

    def show(self, history):
        """Write the history's epochs this board has not written, flushed to disk (called by the records,
        on their writer, after history.json). The first call opens the event file (module docstring)."""
        if EventFileWriter is None:
            if not _told:
                _told.append(True)
                print(MISSING, file=sys.stderr)
            return
        if self.events is None:
            if "resumed" not in history:  # a fresh run: what the folder held is an earlier run's
                for path in glob.glob(os.path.join(self.folder, EVENT_FILES)):
                    os.remove(path)
            self.events = EventFileWriter(self.folder)
            self.add(Event(step=1, session_log=SessionLog(status=SessionLog.START)))
            self.add(Event(summary=hparams_pb(hyperparameters(history))))
        for row in history["epochs"][self.shown:]:
            for tag, value in scalars(row).items():
                self.add(Event(step=row["epoch"], summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)])))
        self.shown = len(history["epochs"])
        self.events.flush()  # blocks until every event above is on disk

    def add(self, event):
        event.wall_time = time.time()
        self.events.add_event(event)

    def close(self):
        if self.events is not None:
            self.events.close()
        self.events, self.shown = None, 0  # a later show() starts a file of its own, from epoch 1
