"""OUT/run.json, the run's settings: written when a run starts, read by --resume, which may change
only where the data is, the device and how many epochs (plus what a framework allows).

It also says which run this is (a random run id, which its train states carry too) and where its
data is, relative to the run folder: --resume and evaluate find the data from any folder without
--data (checked by its fingerprint)."""
import json
import os
import secrets

from experiment.atomic import atomic_write_text
from experiment.cli import explicit_flags
from experiment.config import RunConfig
from experiment.data import is_named
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
    data = {**data_info, "source_from_run": source_from(config.out, data_info["source"])}
    record = {"format": RUN_FORMAT, "framework": config.framework, "program": FRAMEWORKS[config.framework].train,
              "run_id": run_id, "args": config.run_record(), "data": data}
    atomic_write_text(os.path.join(config.out, RUN_FILE), json.dumps(record, indent=1) + "\n")


def source_from(out, source):
    """The data source as named from the run folder OUT: a path relative to it, a name as it is
    (a loaded data set's 'tfds:cifar10' as the source 'tfds')."""
    if is_named(source):
        return "tfds" if source.startswith("tfds:") else source
    return os.path.relpath(os.path.abspath(source), os.path.abspath(out))


def read_run_file(d, who=None):
    """The run record in DIR/run.json, or UserError (its messages start with `who`, by default
    '--resume DIR')."""
    who = who or f"--resume {d}"
    path = os.path.join(d, RUN_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{who}: no {RUN_FILE} there, so it is not a run folder of this project")
    try:
        with open(path) as f:
            run = json.load(f)
        if not isinstance(run, dict) or not isinstance(run.get("args"), dict):
            raise ValueError("no settings")
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise UserError(f"{who}: {RUN_FILE} is unreadable ({type(e).__name__})") from None
    if run.get("format", 1) > RUN_FORMAT:
        raise UserError(f"{who}: {RUN_FILE} has format {run['format']}, written by a newer version of this "
                        f"project (this one reads up to {RUN_FORMAT})")
    return run


def run_id_of(d):
    """The run id DIR/run.json records; None for a run.json written before run ids."""
    run_id = read_run_file(d).get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise UserError(f"--resume {d}: {RUN_FILE} holds run_id {run_id!r}, not a string")
    return run_id


def remembered_data(d, run, who):
    """(source, fingerprint) of the data DIR/run.json (read as `run`) says the run trained on, the
    source named from here: a path recorded relative to the run folder is joined to DIR (a run
    written before that records the path as it was given). None where it records no data;
    UserError naming it where that path is not there."""
    data = run.get("data")
    if not isinstance(data, dict):
        return None
    relative, given = data.get("source_from_run"), data.get("source")
    if isinstance(relative, str) and relative:
        source = relative if is_named(relative) else os.path.join(d, relative)  # not normalised: DIR may be a link
    elif isinstance(given, str) and given:
        source = source_from(".", given) if is_named(given) else given
    else:
        return None
    if not is_named(source) and not os.path.exists(source):
        raise UserError(f"{who}: the data it trained on, {source!r}, is not there (moved or removed?); pass --data "
                        f"with where it is now")
    return source, data.get("fingerprint")


def run_folder_of(ckpt):
    """The run folder a checkpoint was saved in: the nearest of its folder and the two above it (a
    lane is OUT/<folder>/ or OUT/<folder>/seed_<s>/) holding run.json; None for a checkpoint of no run."""
    folder = os.path.dirname(os.path.abspath(ckpt))
    for _ in range(3):
        if os.path.isfile(os.path.join(folder, RUN_FILE)):
            return folder
        folder = os.path.dirname(folder)
    return None


def data_of_runs(ckpts):
    """(source, fingerprint, run folder) of the data the runs of these checkpoints trained on, or None
    where none of them has a run folder that records it; UserError where they trained on different data."""
    found = {}
    for ckpt in ckpts:
        d = run_folder_of(ckpt)
        if d is None:
            continue
        who = f"--ckpt {ckpt}: its run {d}"
        try:
            run = read_run_file(d, who)
        except UserError as e:  # evaluate reads it only for the data, which --data names instead
            raise UserError(f"{e}; pass --data") from None
        data = remembered_data(d, run, who)
        if data is not None:
            found.setdefault(data[1], (*data, d))
    if len(found) > 1:
        runs = " and ".join(d for _, _, d in found.values())
        raise UserError(f"the runs {runs} trained on different data; evaluate their checkpoints one run at a time, "
                        f"or pass --data")
    return next(iter(found.values()), None)


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
    # The run's own data, found from here, unless --data names other, or the run was started on
    # $CIFAR10's (or the default) data and $CIFAR10 is set now.
    if "data" not in given and (saved["data"] is not None or not os.environ.get("CIFAR10")):
        data = remembered_data(d, run, who=f"--resume {d}")
        saved["data"] = data[0] if data else saved["data"]
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
                        f"({now}; the run had {was}, from {saved.get('source')}); pass --data with that data")


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
