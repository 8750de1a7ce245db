"""The train and evaluate commands, written once for both frameworks.

A framework passes a trainer factory (train) or a checkpoint loader (evaluate); everything else
(flags, data, split, outputs, messages) is identical, so the two CLIs cannot drift apart.
"""
import json
import os

import numpy as np

from experiment.atomic import atomic_write_text
from experiment.cli import MODELS, evaluate_parser, train_parser
from experiment.data import load_cifar10
from experiment.errors import Interrupted, UserError
from experiment.history import new_history
from experiment.loop import TRAIN_STATE, StopRequest, prepare_out_dir, train_and_evaluate
from experiment.plots import TUTORIAL_PREFIX, confusion_matrix, plot_confusion, plot_curves, plot_mean_std
from experiment.runfile import RUN_FILE, resumed_args, start_run
from experiment.split import make_splits


def run_train(prog, framework, devices, make_trainer, argv=None, add_flags=None, process_folder=None):
    """make_trainer(model, splits, args, seeds) -> Trainer (see experiment.loop), with .device and
    .versions. add_flags(parser) adds a framework's own flags; process_folder(args) names the
    subfolder of --out a process other than the first of a multi-host run writes to."""
    parser = train_parser(prog, framework, devices)
    if add_flags:
        add_flags(parser)
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one")
    resume_cmd = f"python -m {prog} --resume {args.resume or args.out}"
    sub = process_folder(args) if process_folder else None
    if sub:
        args.out = os.path.join(args.out, sub)
        args.resume = args.resume and os.path.join(args.resume, sub)
    if args.resume:
        args = resumed_args(parser, args, argv, framework)
    models = MODELS if args.model == "both" else (args.model,)
    seeds = args.seeds or [args.seed]
    out_dirs = {m: run_dirs(args.out, m, seeds, per_seed=args.seeds is not None) for m in models}
    if os.path.exists(os.path.join(args.out, RUN_FILE)) and not (args.overwrite or args.resume):
        raise UserError(f"{args.out} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                        f"or choose another --out")
    for dirs in out_dirs.values():  # refuse before spending minutes on data
        for d in dirs:
            prepare_out_dir(d, args.overwrite, args.resume)
    data = load_cifar10(args.data)
    splits = make_splits(data, args.val_fraction, args.split_seed, args.subset)
    if args.batch_size > len(splits.train_x):
        raise UserError(f"--batch-size {args.batch_size} is larger than the {len(splits.train_x)} training images")
    data_info = {"source": data.source, "n_train": len(splits.train_x), "n_val": len(splits.val_x),
                 "n_test": len(splits.test_x), "val_fraction": args.val_fraction, "split_seed": args.split_seed,
                 "subset": args.subset}
    config = {k: v for k, v in vars(args).items() if k not in ("overwrite", "no_progress", "seeds", "resume")}
    try:
        with StopRequest(print) as stop:
            histories = train_models(prog, framework, make_trainer, args, models, seeds, splits, config,
                                     data_info, out_dirs, stop)
    except Interrupted as e:
        raise e.with_command(resume_cmd) from None
    except KeyboardInterrupt:  # outside an epoch (startup, between models): finished epochs are saved
        raise Interrupted(None).with_command(resume_cmd) from None
    if len(models) == 2:
        path = os.path.join(args.out, "curves.png")
        groups = {TUTORIAL_PREFIX[m]: hs for m, hs in histories.items()}
        if args.seeds is None:
            plot_curves({p: hs[0] for p, hs in groups.items()}, path,
                        title=f"{framework}: BaseLine vs Dropout (seed {seeds[0]})")
        else:
            plot_mean_std(groups, path, title=f"{framework}: BaseLine vs Dropout, seeds {seeds}")
        print(f"{prog}: wrote {path}")
    return histories


def train_models(prog, framework, make_trainer, args, models, seeds, splits, config, data_info, out_dirs, stop):
    """Each model in turn, from scratch or from its saved train state; returns {model: histories}."""
    histories, started = {}, False
    for m in models:
        trainer = make_trainer(m, splits, args, seeds)
        hs = [new_history(framework, m, dict(config, model=m, seed=s), s, trainer.device, trainer.versions,
                          data_info) for s in seeds]
        state_path = os.path.join(args.out, m, TRAIN_STATE + trainer.ckpt_ext)
        first = 1
        if args.resume and os.path.exists(state_path):
            done, hs = trainer.load_train_state(state_path)
            if done > args.epochs:
                raise UserError(f"{state_path} has {done} epochs, more than --epochs {args.epochs}")
            first = done + 1
        if not started:  # every input checked: from here on the output folder is ours
            start_run(args, framework, prog, models, trainer.ckpt_ext)
            started = True
        print(f"{prog}: {m} on {trainer.device}, seeds {seeds}, "
              f"{len(splits.train_x)} train / {len(splits.val_x)} val images"
              + (f", resuming at epoch {first}" if first > 1 else ""))
        histories[m] = train_and_evaluate(trainer, splits, args.epochs, hs, out_dirs[m],
                                          os.path.join(args.out, m), start_epoch=first, stop=stop)
        if args.seeds is not None:
            plot_mean_std({"": hs}, os.path.join(args.out, m, "curves_mean_std.png"),
                          title=f"{framework} {m}, seeds {seeds}")
    return histories


def run_dirs(out, model, seeds, per_seed):
    """OUT/<model> for --seed (the tutorial's layout), OUT/<model>/seed_<s> for --seeds."""
    if not per_seed:
        return [os.path.join(out, model)]
    return [os.path.join(out, model, f"seed_{s}") for s in seeds]


def run_evaluate(prog, framework, devices, load_predictor, argv=None):
    """load_predictor(ckpt, device) -> (model name, predict(x_nhwc_float32) -> logits)."""
    args = evaluate_parser(prog, framework, devices).parse_args(argv)
    if not os.path.isfile(args.ckpt):
        raise UserError(f"checkpoint {args.ckpt!r} does not exist")
    model, predict = load_predictor(args.ckpt, args.device)
    data = load_cifar10(args.data)
    splits = make_splits(data)  # only the test arrays are used; normalisation is shared
    logits = predict(splits.test_x)
    report = evaluation_report(logits, splits.test_y, data.classes)
    report.update(framework=framework, model=model, checkpoint=args.ckpt, data=data.source)
    out = args.out or os.path.dirname(os.path.abspath(args.ckpt))
    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, "evaluation.json"), json.dumps(report, indent=1) + "\n")
    plot_confusion(np.array(report["confusion_matrix"]), data.classes,
                   os.path.join(out, "confusion_matrix.png"),
                   title=f"{framework} {model}: test accuracy {100 * report['test_acc']:.2f}%")
    print(f"{prog}: {model} test accuracy {100 * report['test_acc']:.2f}% on {report['n_test']} images")
    for c, a in report["per_class_acc"].items():
        print(f"  {c:<11s} {100 * a:6.2f}%")
    print(f"{prog}: wrote {out}/evaluation.json and confusion_matrix.png")
    return report


def evaluation_report(logits, labels, classes):
    preds = np.asarray(logits).argmax(axis=1)
    cm = confusion_matrix(labels, preds, len(classes))
    per_class = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
    return {"test_acc": float((preds == labels).mean()), "n_test": int(len(labels)),
            "per_class_acc": {c: float(a) for c, a in zip(classes, per_class)},
            "confusion_matrix": cm.tolist(), "predictions": preds.tolist()}
