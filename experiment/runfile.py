"""OUT/run.json, the run's settings: written when a run starts, read by --resume, which may change
only where the data is, the device and how many epochs (plus what a framework allows). It also says
which run this is: a random run id, which its train states carry too."""
import json
import os
import secrets

from experiment.atomic import atomic_write_text
from experiment.cli import explicit_flags
from experiment.config import RunConfig
from experiment.errors import UserError
from experiment.frameworks import FRAMEWORKS

RUN_FILE = "run.json"
RUN_FORMAT = 2  # 1: no "format" key (read the same way)
# What --resume may change: where the data is read from, on which device, for how many epochs.
RESUME_MAY_CHANGE = ("resume", "epochs", "data", "device", "no_progress")


def new_run_id():
    return secrets.token_hex(8)


def write_run_file(config, data_info, run_id):
    """OUT/run.json: the run's settings, its id and what data it trains on (what --resume reads)."""
    record = {"format": RUN_FORMAT, "framework": config.framework, "program": FRAMEWORKS[config.framework].train,
              "run_id": run_id, "args": config.run_record(), "data": data_info}
    atomic_write_text(os.path.join(config.out, RUN_FILE), json.dumps(record, indent=1) + "\n")


def read_run_file(d):
    """The run record in DIR/run.json, or UserError."""
    path = os.path.join(d, RUN_FILE)
    if not os.path.isfile(path):
        raise UserError(f"--resume {d}: no {RUN_FILE} there, so it is not a run folder of this project")
    try:
        with open(path) as f:
            run = json.load(f)
        if not isinstance(run, dict) or not isinstance(run.get("args"), dict):
            raise ValueError("no settings")
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise UserError(f"--resume {d}: {RUN_FILE} is unreadable ({type(e).__name__})") from None
    if run.get("format", 1) > RUN_FORMAT:
        raise UserError(f"--resume {d}: {RUN_FILE} has format {run['format']}, written by a newer version of this "
                        f"project (this one reads up to {RUN_FORMAT})")
    return run


def run_id_of(d):
    """The run id DIR/run.json records; None for a run.json written before run ids."""
    run_id = read_run_file(d).get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise UserError(f"--resume {d}: {RUN_FILE} holds run_id {run_id!r}, not a string")
    return run_id


def resumed_config(parser, args, argv, backend):
    """The run's saved settings from DIR/run.json, checked as the command line checks flags, with
    the few flags --resume may change (and those the framework's options.RESUME_MAY_CHANGE names) applied."""
    d, framework = args.resume, backend.framework.name
    run = read_run_file(d)
    if run.get("framework") != framework:
        raise UserError(f"--resume {d}: it is a {run.get('framework')} run; continue it with "
                        f"python -m {run.get('program')} --resume {d}")
    try:
        saved = vars(parser.parse_args(as_argv(parser, run["args"])))
    except UserError as e:
        raise UserError(f"--resume {d}: {RUN_FILE} holds a setting the command line refuses: {e}") from None
    for k, v in run["args"].items():  # as written by this project: the values the flags give, of their types
        parsed = saved[k]
        if v is not None and (type(v) is not type(parsed) or v != parsed):
            raise UserError(f"--resume {d}: {RUN_FILE} holds {k} = {v!r} ({type(v).__name__}), not what "
                            f"--{k.replace('_', '-')} gives ({parsed!r}, {type(parsed).__name__})")
    given = explicit_flags(parser, argv)
    allowed = RESUME_MAY_CHANGE + tuple(backend.options.RESUME_MAY_CHANGE)
    changed = sorted(f for f in given if f not in allowed and getattr(args, f) != saved.get(f))
    if changed:
        flags = ", ".join(f"--{f.replace('_', '-')} {getattr(args, f)}" for f in changed)
        raise UserError(f"--resume continues with the run's saved settings; drop {flags} "
                        f"(only --epochs, --data, --device, --no-progress may change)")
    saved.update({k: getattr(args, k) for k in given})
    saved.update(resume=d, out=d, overwrite=False)
    return RunConfig.from_args(framework, saved, backend.options)


def check_same_data(d, data_info):
    """Refuse to resume on other data than the run trained on: sizes and content must match (the
    same data read from another place is fine)."""
    saved = read_run_file(d).get("data")
    if not isinstance(saved, dict) or "fingerprint" not in saved:
        return  # run.json of format 1 recorded no data: nothing to compare
    keys = ("n_train", "n_val", "n_test", "fingerprint")
    if any(saved.get(k) != data_info[k] for k in keys):
        was = ", ".join(f"{k} {saved.get(k)}" for k in keys)
        now = ", ".join(f"{k} {data_info[k]}" for k in keys)
        raise UserError(f"--resume {d}: the data from {data_info['source']} is not what this run trained on "
                        f"({now}; the run had {was}, from {saved.get('source')}); resume with that data")


def as_argv(parser, settings):
    """Saved settings as the command line that gives them; an unknown name is refused."""
    known = vars(parser.parse_args([]))
    argv = []
    for k, v in settings.items():
        if k not in known:
            raise UserError(f"unknown setting {k!r}")
        flag = "--" + k.replace("_", "-")
        if known[k] is False and isinstance(v, bool):  # an on/off flag
            argv += [flag] if v else []
        elif v is None:
            continue  # the default
        elif isinstance(v, list):
            argv.append(f"{flag}={','.join(str(x) for x in v)}")
        else:
            argv.append(f"{flag}={v}")  # '=': a value that starts with '-' stays a value
    return argv
