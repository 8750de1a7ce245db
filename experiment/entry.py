"""The train and evaluate commands, written once for both frameworks.

A framework passes a Backend (train) or a checkpoint loader (evaluate); everything else (flags,
data, split, outputs, messages) is identical, so the two command lines cannot drift apart.

One training run, from --data to the device: the flags become a RunConfig; its models, dropout
rates and seeds become lanes (experiment.lanes), each with its folder and history
(experiment.records); the data is loaded, split and normalised once (experiment.data,
experiment.split); the backend partitions the lanes among trainers (Flax: one compiled program;
PyTorch: one model at a time, as the tutorial does) and the shared loop (experiment.loop) asks each
trainer for its epochs and hands them to the records, which write the files.
"""
import json
import os
import shlex
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from experiment.atomic import atomic_write_text
from experiment.cli import default_config, evaluate_parser, train_parser
from experiment.config import RunConfig
from experiment.data import check_source, load_cifar10
from experiment.errors import Interrupted, UserError, exit_on_user_error
from experiment.frameworks import Framework
from experiment.lanes import plan_lanes
from experiment.lock import FolderLock, NewFolders
from experiment.loop import train_and_evaluate
from experiment.plots import confusion_matrix, plot_confusion
from experiment.records import RunRecords
from experiment.runfile import check_same_data, data_of_runs, resumed_config, run_folder_of
from experiment.split import make_splits, normalize
from experiment.stop import StopRequest
from experiment.writer import Writer


class Options(Protocol):
    """A framework's own settings: a frozen dataclass (its fields, with their defaults, are its flags)."""
    RESUME_MAY_CHANGE: tuple  # those --resume may change

    @classmethod
    def add_flags(cls, parser): ...

    @classmethod
    def process_folder(cls, args):
        """The subfolder of --out this process writes (a multi-host run's processes after the first), or None."""

    def writer_depth(self):
        """Epochs of writes that may wait while the next epoch trains (0: write before training on)."""


class Trainers(Protocol):
    """Which lanes a framework trains together, and the Trainer (experiment.trainer) of each group."""

    def partition(self, config, lanes):
        """[[lanes of one trainer], ...], trained one trainer after the other."""

    def check(self, config, lanes):
        """UserError for a device or framework flag the run cannot use: checked before anything is created."""

    def make(self, config, lanes, splits): ...


@dataclass(frozen=True)
class Backend:
    """What a framework provides to the train command, as a table:

    | field     | what                                    | Flax                    | PyTorch                     |
    |-----------|-----------------------------------------|-------------------------|-----------------------------|
    | framework | its names, modules, checkpoint suffix   | FRAMEWORKS["flax"]      | FRAMEWORKS["torch"]         |
    | options   | its own settings and flags (Options)    | flax_impl/options.py    | torch_ref/options.py        |
    | codec     | its files (experiment.checkpoints)      | flax_impl/checkpoint.py | torch_ref/checkpoint.py     |
    | trainers  | lanes grouped into trainers (Trainers)  | one program of all      | per folder, or one (vmap)   |
    """
    framework: Framework
    options: type
    codec: object
    trainers: Trainers

    def default(self, **overrides):
        """The command line's defaults as a RunConfig, for code that builds a trainer itself."""
        return default_config(self.framework, self.options.add_flags, self.options, **overrides)

    def make_trainer(self, config, lanes, splits):
        return self.trainers.make(config, lanes, splits)


def train_main(backend):
    """The train command's entry point: main(argv) with one-line errors and exit codes."""
    return exit_on_user_error(backend.framework.train)(lambda argv=None: run_train(backend, argv))


def evaluate_main(fw, load_predictor, setup=lambda: None):
    """The evaluate command's entry point: main(argv) with one-line errors and exit codes."""
    def main(argv=None):
        setup()
        return run_evaluate(fw, load_predictor, argv)
    return exit_on_user_error(fw.evaluate)(main)


def run_train(backend, argv=None):
    """Parse and check every input (flags, device, that the data source is there and of a known
    kind, the output folder) before anything is created or locked, so the first error named is the
    real one and a refused run leaves nothing behind; then lock the output folder, load the data
    and train. A stop signal (Ctrl-C, SIGTERM, SIGHUP) is answered at once (experiment.stop)."""
    with StopRequest(print, backend.framework.train) as stop:
        config, resume_cmd = configure(backend, argv)
        stop.resume_with(resume_cmd)
        records = RunRecords(config, backend.codec, plan_lanes(config))
        backend.trainers.check(config, [r.lane for r in records.lanes])
        check_source(config.data)
        records.check()
        folders = NewFolders()  # what this run creates, removed again if it is refused or stopped before it starts
        try:
            with FolderLock(config.out, folders) as lock:  # from here no other run may use OUT
                stop.on_exit(lock.cleanup)
                records.check()  # again: a run may have finished there since
                records.make_folders(folders)  # refuse before spending minutes on data
                splits, data_info = load_splits(config)
                if config.resume:
                    check_same_data(config.resume, data_info)
                with Writer(config.options.writer_depth()) as writer:
                    records.begin(writer, stop)
                    train_all(backend, records, splits, data_info, folders)
        except Interrupted as e:
            raise e.with_command(resume_cmd) from None
    figure = records.finish()
    if figure:
        print(f"{backend.framework.train}: wrote {figure}")
    print(summary(backend.framework, records))
    return {folder: [r.history for r in rs] for folder, rs in records.by_folder().items()}


def summary(fw, records):
    """What the run found and where it is: per model the epoch each checkpoint kept (lowest val
    loss), its val loss and accuracy, the files, and the command that tests them."""
    config = records.config
    lines = [f"{fw.train}: done; best.{fw.ckpt_ext[1:]} is each lane's epoch of lowest val loss:"]
    ckpts = []
    for group, rs in records.by_folder().items():
        best = [r.best_row() for r in rs if r.best_row()]
        if not best:
            continue
        spread = lambda values, fmt: fmt(min(values)) + ("" if len(set(values)) == 1 else "–" + fmt(max(values)))  # noqa: E731
        lanes = os.path.join("seed_*" if config.seeds is not None else "", "best" + fw.ckpt_ext)
        seeds = f" ({len(rs)} seeds)" if config.seeds is not None else ""
        lines.append(f"  {group}{seeds}: epoch {spread([r['epoch'] for r in best], str)}, val loss "
                     f"{spread([r['val_loss'] for r in best], '{:.4f}'.format)}, val acc "
                     f"{spread([100 * r['val_acc'] for r in best], '{:.2f}%'.format)} -> "
                     f"{os.path.join(config.out, group, lanes)} (and last{fw.ckpt_ext}, curves.png)")
        # typed into a shell: the folder quoted, the seeds' glob not
        ckpts.append(os.path.join(shlex.quote(os.path.join(config.out, group)), lanes))
    figure = os.path.join(config.out, "curves.png")
    if len(records.by_folder()) > 1:
        lines.append(f"  both models' curves: {figure}")
    lines.append(f"  test them: {fw.command('evaluate')} --ckpt {' '.join(ckpts)}")
    return "\n".join(lines)


def configure(backend, argv):
    """The run's RunConfig from the command line (or, with --resume, from run.json), and the command
    that continues it."""
    fw = backend.framework
    parser = train_parser(fw, backend.options.add_flags)
    args = parser.parse_args(argv)
    if args.resume == "":
        raise UserError("--resume needs the folder of the run to continue")
    if args.out == "":
        raise UserError("--out is empty; give the folder to write the run to")
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one")
    resume_cmd = f"{fw.command()} --resume {shlex.quote(args.resume or args.out)}"
    sub = backend.options.process_folder(args)
    if sub:
        args.out = os.path.join(args.out, sub)
        args.resume = args.resume and os.path.join(args.resume, sub)
    if args.resume:
        return resumed_config(parser, args, argv, backend), resume_cmd
    return RunConfig.from_args(fw.name, args, backend.options), resume_cmd


def load_splits(config):
    """The data, split and normalised, and what history.json says of it."""
    data = load_cifar10(config.data)
    splits = make_splits(data, config.val_fraction, config.split_seed, config.subset)
    if config.batch_size > len(splits.train_x):
        raise UserError(f"--batch-size {config.batch_size} is larger than the {len(splits.train_x)} training images")
    data_info = {"source": data.source, "n_train": len(splits.train_x), "n_val": len(splits.val_x),
                 "n_test": len(splits.test_x), "val_fraction": config.val_fraction,
                 "split_seed": config.split_seed, "subset": config.subset, "fingerprint": data.fingerprint()}
    return splits, data_info


def train_all(backend, records, splits, data_info, folders=None):
    """Each trainer in turn, from scratch or from its saved train state."""
    config, fw, stop = records.config, backend.framework, records.stop
    parts = records.partition(backend.trainers.partition(config, [r.lane for r in records.lanes]))
    for i, part in enumerate(parts):
        trainer = backend.trainers.make(config, [r.lane for r in part.lanes], splits)
        first = part.open(trainer, data_info)
        if i == 0:  # every input checked: from here on the output folder is ours
            records.start(data_info, parts)
            stop.run_started()
            if folders is not None:
                folders.keep()
        names = "+".join(dict.fromkeys(r.lane.folder for r in part.lanes))
        if first > config.epochs:
            where = f"all {config.epochs} epochs are done, nothing to train (to go on: {fw.command()} --resume " \
                    f"{shlex.quote(config.out)} --epochs N, N > {config.epochs})"
        else:
            where = f"resuming at epoch {first}" if first > 1 else ""
        print(f"{fw.train}: {names} on {trainer.device}, seeds {config.seed_list}, "
              f"{len(splits.train_x)} train / {len(splits.val_x)} val images" + (f", {where}" if where else ""))
        train_and_evaluate(trainer, part, config.epochs, stop=stop)
        stop.trainer_finished()
        records.trainer_figures(part)


def run_evaluate(fw, load_predictor, argv=None):
    """load_predictor(ckpt, device, precision) -> (model name, predict(x_nhwc_float32) -> logits), with
    predict.precision the precision it computes at. Several
    --ckpt: each evaluated in turn on data loaded once; returns the last one's report. Without
    --data and $CIFAR10: the data the checkpoints' run trained on (its run.json), checked unchanged."""
    args = evaluate_parser(fw).parse_args(argv)
    if args.out and len(args.ckpt) > 1:
        raise UserError("--out takes one --ckpt; with several, each writes beside its checkpoint")
    outs = {}
    for ckpt in args.ckpt:  # every file checked before the data is read, and nothing created before then
        if not os.path.isfile(ckpt):
            raise UserError(f"checkpoint {ckpt!r} does not exist")
        out = check_out_folder(args.out or evaluation_folder(ckpt))
        if outs.setdefault(out, ckpt) != ckpt:  # one evaluation.json would replace the other
            raise UserError(f"{outs[out]} and {ckpt} would both write {out}/evaluation.json; evaluate them one "
                            f"at a time with --out")
    run_data = None if args.data or os.environ.get("CIFAR10") else data_of_runs(args.ckpt)
    source = run_data[0] if run_data else args.data
    check_source(source)
    predictors = [load_predictor(ckpt, args.device, args.precision) for ckpt in args.ckpt]
    data = load_cifar10(source)
    if run_data and run_data[1] not in (None, data.fingerprint()):
        raise UserError(f"the data {source} has changed since the run in {run_data[2]} trained on it (its content "
                        f"differs); pass --data to evaluate on other data")
    test_x = normalize(data.test_x)
    for ckpt, (model, predict) in zip(args.ckpt, predictors):
        report = evaluation_report(predict(test_x), data.test_y, data.classes)
        report.update(framework=fw.name, model=model, checkpoint=ckpt, data=data.source, precision=predict.precision,
                      epoch=predict.epoch)
        write_evaluation(fw, report, data.classes, out_folder(args.out or evaluation_folder(ckpt)))
    return report


def evaluation_folder(ckpt):
    """Where evaluate writes by default: beside a checkpoint of a run (its lane folder), and for a
    checkpoint of no run (an export, the tutorial's file) under runs/evaluate/<its name>, never
    loose in the current folder."""
    folder = os.path.dirname(os.path.abspath(ckpt))
    if os.path.isfile(os.path.join(folder, "history.json")) or run_folder_of(ckpt):
        return folder
    return os.path.join("runs", "evaluate", os.path.splitext(os.path.basename(ckpt))[0])


def check_out_folder(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out} is a file; give a folder for evaluation.json and confusion_matrix.png")
    return out


def out_folder(out):
    check_out_folder(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out} ({e.strerror or e})") from None
    return out


def write_evaluation(fw, report, classes, out):
    atomic_write_text(os.path.join(out, "evaluation.json"), json.dumps(report, indent=1) + "\n")
    epoch = f" (epoch {report['epoch']})" if report.get("epoch") else ""
    line = f"{report['model']}{epoch} test accuracy {100 * report['test_acc']:.2f}%"
    plot_confusion(np.array(report["confusion_matrix"]), classes, os.path.join(out, "confusion_matrix.png"),
                   f"{fw.name} {line}")
    print(f"{fw.evaluate}: {line} on {report['n_test']} images")
    for c, a in report["per_class_acc"].items():
        print(f"  {c:<11s} {100 * a:6.2f}%")
    print(f"{fw.evaluate}: wrote {out}/evaluation.json and confusion_matrix.png")


def evaluation_report(logits, labels, classes):
    preds = np.asarray(logits).argmax(axis=1)
    cm = confusion_matrix(labels, preds, len(classes))
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    return {"test_acc": float((preds == labels).mean()), "n_test": int(len(labels)),
            "per_class_acc": {c: float(a) for c, a in zip(classes, per_class)},
            "confusion_matrix": cm.tolist(), "predictions": preds.tolist()}
