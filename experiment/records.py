"""A run's records: where each lane's files go, its history, and what every epoch writes, in order.
Trainers only compute (experiment.trainer); every file of a training run is written from here.

    OUT/run.json                 the run's settings (experiment.runfile): what --resume reads
    OUT/<folder>/                a lane of one seed (--seed): the tutorial's layout
    OUT/<folder>/seed_<s>/       a lane of several seeds (--seeds)
        best.*, last.*           the weights of the epoch of lowest val loss, and of the last one
        history.json             its epochs (this schema), curves.png their figure
        events.out.tfevents.*    the same epochs for TensorBoard (experiment.tensorboard)
    OUT/<folder>/train_state.*   a trainer's lanes of one folder: what --resume continues from
    OUT/train_state.*            a trainer whose lanes span folders (one program for all)

After every epoch each lane's best (if it is), last and history.json are written, then the train
state of all the trainer's lanes: that last write is the commit point a resumed run continues
from, so a kill anywhere loses at most the epochs not yet committed. The writes go through a writer
(experiment.writer), which may run them on another thread while the next epoch trains; an epoch's
log line is printed once its epoch is on disk.
"""
import copy
import json
import os
import re
import time

from experiment.atomic import atomic_write_text
from experiment.checkpoints import check_state_header, checkpoint_meta, train_state_header
from experiment.errors import UserError
from experiment.lanes import folder_name
from experiment.metrics import EPOCH_FIELDS, epoch_fields, log_text
from experiment.plots import plot_curves, plot_mean_std
from experiment.provenance import code_version_here, machine, versions
from experiment.runfile import RUN_FILE, new_run_id, run_id_of, write_run_file
from experiment.tensorboard import LaneBoard
from experiment.variants import VARIANTS

SCHEMA_VERSION = 1
TRAIN_STATE = "train_state"


def new_history(lane, config, trainer, data_info):
    """A lane's history.json before its first epoch: what it is, where and by which code it ran."""
    return {
        "schema": SCHEMA_VERSION, "framework": config.framework, "model": lane.model, "seed": lane.seed,
        "config": config.recorded(lane), "device": trainer.device, "versions": versions(trainer.versions),
        "machine": machine(), "code": code_version_here(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": data_info, "epochs": [], "best_epoch": None, "best_val_loss": None,
    }


def add_epoch(history, row):
    """Append one epoch; returns True when it has the best validation loss so far. A field the
    schema (experiment.metrics) does not know, or one it lacks, is an error, never dropped."""
    fields = next((f for f in (EPOCH_FIELDS, epoch_fields(eval_train=True)) if set(row) == set(f)), None)
    if fields is None:
        raise ValueError(f"history row fields {sorted(row)} differ from {list(EPOCH_FIELDS)}")
    row = {k: row[k] for k in fields}
    history["epochs"].append(row)
    best = history["best_val_loss"]
    if best is None or row["val_loss"] < best:
        history["best_epoch"], history["best_val_loss"] = row["epoch"], row["val_loss"]
        return True
    return False


def save_history(history, path):
    atomic_write_text(path, json.dumps(history, indent=1) + "\n")


class LaneRecord:
    """One lane (experiment.trainer.Lane), the folder its files go to and its history."""

    def __init__(self, lane, folder):
        self.lane, self.folder, self.history = lane, folder, None
        self.board = LaneBoard(folder)

    def path(self, name):
        return os.path.join(self.folder, name)

    def add(self, row):
        """Add an epoch's row to the history; True when it is the best so far."""
        return add_epoch(self.history, row)

    def best_row(self):
        h = self.history
        return h["epochs"][h["best_epoch"] - 1] if h and h["best_epoch"] else None


class TrainerRecords:
    """The records of one trainer's lanes and of its train state, and the writes of each epoch."""

    def __init__(self, run, lanes, state_path):
        self.run, self.lanes, self.state_path = run, lanes, state_path
        self.first_epoch = 1

    def open(self, trainer, data_info):
        """The lanes' histories, fresh or (with --resume and a train state) as saved, the trainer
        restored to where they end; returns the first epoch to train (also kept as first_epoch)."""
        config = self.run.config
        fresh = [new_history(r.lane, config, trainer, data_info) for r in self.lanes]
        for r, h in zip(self.lanes, fresh):
            r.history = h
        if not (config.resume and os.path.exists(self.state_path)):
            return 1
        done, saved = self.read_state(trainer)
        for r, h, new in zip(self.lanes, saved, fresh):  # when and by which code each later part was trained
            h.setdefault("resumed", []).append({"at_epoch": done + 1, "started": new["started"],
                                                "code": new["code"], "machine": new["machine"]})
            r.history = h
        if done > config.epochs:
            raise UserError(f"{self.state_path} has {done} epochs, more than --epochs {config.epochs}")
        self.first_epoch = done + 1
        return self.first_epoch

    def read_state(self, trainer):
        """(saved epoch, histories) of the train state, the trainer holding its state; UserError
        for a file that is not this run's."""
        path = self.state_path
        header, tree = self.run.codec.read_state(path)
        done = check_state_header(path, header, [r.lane for r in self.lanes], self.run.run_id)
        try:
            trainer.restore(tree)
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"{path} does not fit this run's lanes ({type(e).__name__}: {e})") from None
        return done, header["histories"]

    def record(self, trainer, snapshot, epoch, metrics, seconds):
        """Add the epoch to every lane's history and queue its writes: per lane best (if it is),
        last and history.json, then the train state, then the log lines."""
        run, writer = self.run, self.run.writer
        compiled = trainer.compile_stats()
        # The lanes of one trainer share the epoch's time (one program, or trained one after another).
        shared = f" (all {len(self.lanes)} lanes)" if len(self.lanes) > 1 else ""
        lines, histories = [], []
        for i, r in enumerate(self.lanes):
            row = {"epoch": epoch, **{k: float(v[i]) for k, v in metrics.items()}, "seconds": round(seconds, 3)}
            is_best = r.add(row)
            if compiled is not None:  # apart from the epochs' seconds: what compiling cost this process
                r.history["compile"] = compiled
            meta = checkpoint_meta(run.config.framework, r.lane, run.config.recorded(r.lane), epoch=epoch,
                                   val_loss=row["val_loss"], val_acc=row["val_acc"])
            for name in ("best", "last") if is_best else ("last",):
                writer.submit(self.write_params, snapshot, i, r.path(name + run.codec.ext), meta)
            # One copy, as it is now, for history.json and the train state (the writer may write them
            # while the next epoch adds to the history).
            histories.append(copy.deepcopy(r.history))
            writer.submit(save_history, histories[-1], r.path("history.json"))
            writer.submit(r.board.show, histories[-1])
            lines.append(f"[{r.history['framework']} {r.lane.folder} seed {r.lane.seed}] epoch "
                         f"{epoch}/{run.config.epochs}  {log_text(row)}  {seconds:.1f}s{shared}"
                         f"{'  *best' if is_best else ''}")
        header = train_state_header([r.lane for r in self.lanes], epoch, histories, run.run_id)
        writer.submit(self.write_state, snapshot, header)
        if run.stop is not None:
            writer.submit(run.stop.commit, epoch)
        for line in lines:
            writer.submit(run.log, line)
        writer.end_epoch()

    def write_params(self, snapshot, lane, path, meta):
        self.run.codec.write_params(path, snapshot.params(lane), meta)

    def write_state(self, snapshot, header):
        self.run.codec.write_state(self.state_path, header, snapshot.state())


class RunRecords:
    """Every lane of a run, its folders and its run.json; the writer, stop request and log that each
    epoch's writes go through once the run starts (begin)."""

    def __init__(self, config, codec, lanes):
        self.config, self.codec = config, codec
        self.lanes = [LaneRecord(lane, lane_folder(config, lane)) for lane in lanes]
        self.writer, self.stop, self.log = None, None, print
        # The run the train states belong to; a run from before run ids (None) gets one when it starts.
        self.run_id = run_id_of(config.resume) if config.resume else new_run_id()

    def check(self):
        """Refuse an output folder that holds a run (unless --resume or --overwrite), a resumed run
        whose lane folder is gone, and an --overwrite that would leave lanes of the run it replaces
        beside its own (they would pass as this run's); creates nothing."""
        config = self.config
        if os.path.exists(os.path.join(config.out, RUN_FILE)) and not (config.overwrite or config.resume):
            raise UserError(f"{config.out} already holds a run; pass --resume to continue it, --overwrite "
                            f"to replace it, or choose another --out")
        for d in [config.out, *(r.folder for r in self.lanes)]:
            check_out_dir(d, config.overwrite, config.resume)
        if config.resume:
            gone = next((r.folder for r in self.lanes if not os.path.isdir(r.folder)), None)
            if gone:  # recreated, it would lack the checkpoints its history names
                raise UserError(f"--resume {config.out}: the lane folder {gone} is missing (renamed or removed?); "
                                f"put it back, or train afresh with --overwrite")
        if config.overwrite:
            mine = {r.folder for r in self.lanes}
            left = [d for d in lane_folders_in(config.out) if d not in mine]
            if left:
                more = f" and {len(left) - 2} more" if len(left) > 2 else ""
                raise UserError(f"--overwrite replaces the run in {config.out}, but {' and '.join(left[:2])}{more} "
                                f"hold lanes this run does not train; remove them first, or choose another --out")

    def make_folders(self, folders):
        """Create the lanes' folders (noting what is new in `folders`, an experiment.lock.NewFolders),
        each checked writable: refused before minutes are spent on data."""
        for r in self.lanes:
            make_out_dir(r.folder, self.config, folders)

    def begin(self, writer, stop=None, log=print):
        self.writer, self.stop, self.log = writer, stop, log

    def partition(self, groups):
        """TrainerRecords for each group of lanes (a trainer's), in the order given."""
        by_lane = {id(r.lane): r for r in self.lanes}
        return [TrainerRecords(self, [by_lane[id(lane)] for lane in group], self.state_path(group)) for group in groups]

    def state_path(self, lanes):
        folders = {lane.folder for lane in lanes}
        base = os.path.join(self.config.out, folders.pop()) if len(folders) == 1 else self.config.out
        return os.path.join(base, TRAIN_STATE + self.codec.ext)

    def start(self, data_info, parts):
        """Write run.json (what --resume reads) and, for a fresh run, drop train states an earlier run
        left, so a kill in the first epoch cannot resume someone else's run. Temp files of writes a
        kill cut short are removed from the run's own folders only (OUT, the train states', the
        lanes' and their parents): a folder below OUT may be another run's, writing now."""
        config = self.config
        if self.run_id is None:
            self.run_id = new_run_id()
        write_run_file(config, data_info, self.run_id)
        states = [p.state_path for p in parts]
        stale = [] if config.resume else list(states)
        lanes = [r.folder for r in self.lanes]
        mine = [config.out, *(os.path.dirname(f) for f in states), *lanes, *(os.path.dirname(f) for f in lanes)]
        for folder in dict.fromkeys(f for f in mine if os.path.isdir(f)):
            stale += [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(".tmp-")]
        for path in stale:
            if os.path.exists(path):
                os.remove(path)

    def by_folder(self):
        """{folder name: [LaneRecord, ...]} of the lanes that have a history, in the run's order."""
        groups = {}
        for r in self.lanes:
            if r.history is not None:
                groups.setdefault(r.lane.folder, []).append(r)
        return groups

    def finish(self):
        """With several folders: OUT/curves.png, the tutorial's loss and accuracy panels (normal_train,
        normal_val, drop_train, drop_val, ...; mean ± std with --seeds); returns its path (None: one folder).
        Every lane's event file is closed (the writer has written everything by now)."""
        config = self.config
        for r in self.lanes:
            r.board.close()
        histories = {f: [r.history for r in rs] for f, rs in self.by_folder().items()}
        if len(histories) < 2:
            return None
        path = os.path.join(config.out, "curves.png")
        if config.dropout_rates is None:  # the tutorial's pair, named as its figure names them
            groups = {VARIANTS[g].legend: hs for g, hs in histories.items()}
            what = "BaseLine vs Dropout"
        else:  # every rate named by its rate, 0.5 too
            rate_of = {folder_name(r): r for r in config.dropout_rates}
            groups = {f"rate {rate_of[g]:g}" + (" (BaseLine)" if rate_of[g] == 0 else ""): hs
                      for g, hs in histories.items()}
            what = "dropout rates"
        if config.seeds is None:
            plot_curves({p: hs[0] for p, hs in groups.items()}, path,
                        title=f"{config.framework}: {what} (seed {config.seed})")
        else:
            plot_mean_std(groups, path, title=f"{config.framework}: {what}, seeds {config.seed_list}")
        return path

    def trainer_figures(self, part):
        """A finished trainer's figures: each lane's curves.png and, with --seeds, each of its folders'
        curves_mean_std.png over the folder's seeds."""
        for r in part.lanes:
            plot_curves({"": r.history}, r.path("curves.png"),
                        title=f"{r.history['framework']} {r.lane.folder} (seed {r.lane.seed})")
        if self.config.seeds is None:
            return
        groups = self.by_folder()
        for folder in dict.fromkeys(r.lane.folder for r in part.lanes):
            plot_mean_std({"": [r.history for r in groups[folder]]},
                          os.path.join(self.config.out, folder, "curves_mean_std.png"),
                          title=f"{self.config.framework} {folder}, seeds {self.config.seed_list}")


def lane_folder(config, lane):
    if config.seeds is None:
        return os.path.join(config.out, lane.folder)
    return os.path.join(config.out, lane.folder, f"seed_{lane.seed}")


def lane_folders_in(out):
    """The folders under OUT that hold a lane's history: OUT/<folder>/ and OUT/<folder>/seed_<s>/."""
    found = []
    for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
        group = os.path.join(out, name)
        if os.path.isfile(os.path.join(group, "history.json")):
            found.append(group)
        elif os.path.isdir(group):
            found += [os.path.join(group, s) for s in sorted(os.listdir(group))
                      if re.fullmatch(r"seed_\d+", s) and os.path.isfile(os.path.join(group, s, "history.json"))]
    return found


def check_out_dir(path, overwrite, resume=False):
    """Refuse to clobber a finished or partial run unless told to; creates nothing."""
    if os.path.exists(os.path.join(path, "history.json")) and not (overwrite or resume):
        raise UserError(f"{path} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --out")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"cannot write to output folder {path} (it is a file)")


def make_out_dir(path, config, folders=None):
    """Create `path` (noting it in `folders`), checked writable; refuse to clobber a run unless told to."""
    check_out_dir(path, config.overwrite, config.resume)
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
