"""OUT/run.json, the run's settings: written when a run starts, read by --resume, which may
change only where the data is, the device and how many epochs."""
import argparse
import copy
import json
import os

from experiment.atomic import atomic_write_text
from experiment.cli import default_args
from experiment.errors import UserError
from experiment.loop import TRAIN_STATE

RUN_FILE = "run.json"
# What --resume may change: where the data is read from, on which device, for how many epochs.
RESUME_MAY_CHANGE = ("resume", "epochs", "data", "device", "no_progress",
                     "coordinator", "num_processes")  # a multi-host run may restart on other hosts


def start_run(args, framework, prog, models, ckpt_ext):
    """Record the run's settings in OUT/run.json (what --resume reads) and, for a fresh run, drop
    train states an earlier run left, so a kill in the first epoch cannot resume someone else's run."""
    saved = {k: v for k, v in vars(args).items() if k not in ("overwrite", "resume", "no_progress")}
    atomic_write_text(os.path.join(args.out, RUN_FILE),
                      json.dumps({"framework": framework, "program": prog, "args": saved}, indent=1) + "\n")
    for m in models:
        folder = os.path.join(args.out, m)
        stale = [os.path.join(folder, TRAIN_STATE + ckpt_ext)] if not args.resume else []
        for root, _, files in os.walk(folder):  # temp files of writes a kill cut short
            stale += [os.path.join(root, f) for f in files if f.startswith(".tmp-")]
        for path in stale:
            if os.path.exists(path):
                os.remove(path)


def resumed_args(parser, args, argv, framework):
    """The run's saved settings from DIR/run.json, with the few flags --resume may change applied."""
    d = args.resume
    path = os.path.join(d, RUN_FILE)
    if not os.path.isfile(path):
        raise UserError(f"--resume {d}: no {RUN_FILE} there, so it is not a run folder of this project")
    try:
        with open(path) as f:
            run = json.load(f)
        saved = dict(run["args"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--resume {d}: {RUN_FILE} is unreadable ({type(e).__name__})") from None
    if run.get("framework") != framework:
        raise UserError(f"--resume {d}: it is a {run.get('framework')} run; continue it with "
                        f"python -m {run.get('program')} --resume {d}")
    merged = vars(default_args(parser))  # defaults, for settings an older run.json lacks
    merged.update(saved, out=d)
    given = explicit_flags(parser, argv)
    changed = sorted(f for f in given if f not in RESUME_MAY_CHANGE and getattr(args, f) != merged.get(f))
    if changed:
        flags = ", ".join(f"--{f.replace('_', '-')} {getattr(args, f)}" for f in changed)
        raise UserError(f"--resume continues with the run's saved settings; drop {flags} "
                        f"(only --epochs, --data, --device, --no-progress may change)")
    merged.update({k: getattr(args, k) for k in given})
    merged.update(resume=d, out=d, overwrite=False)
    return argparse.Namespace(**merged)


def explicit_flags(parser, argv):
    """The dests of the flags actually given on the command line."""
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return list(vars(quiet.parse_args(argv)))
