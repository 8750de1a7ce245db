"""What a results folder holds: where the runners (benchmarks/runners/) write each file and how anyone
(a runner resuming, the report, the device run) reads it back. Reading only; nothing is computed here.

    <convergence OUT>/convergence.json
    <convergence OUT>/<framework>/<model>/seed_<s>/history.json, best.*, evaluation.json
    <sweep OUT>/sweep.json, <sweep OUT>/batch_<b>/<rate folder>/seed_<s>/history.json
    <speed OUT>/speed.json, speed.md        <wall OUT>/wall.json, wall.md
"""
import json
import os

from experiment.history import load_history
from experiment.lanes import folder_name
from experiment.variants import MODELS

EVALUATION_FILES = ("evaluation.json", "confusion_matrix.png")
FRAMEWORK_ORDER = ("flax", "torch")


def seed_dir(out, fw, model, seed):
    """A convergence run's folder of one framework, model and seed."""
    return os.path.join(out, fw, model, f"seed_{seed}")


def lane_file(out, batch, rate, seed):
    """A sweep lane's history."""
    return os.path.join(out, f"batch_{batch}", folder_name(rate), f"seed_{seed}", "history.json")


def read_json(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def json_or(path, default):
    """A JSON file's content, or `default` where it is missing or unreadable (not evaluated yet,
    a first run)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError):
        return default


def frameworks_of(conv):
    """The frameworks a convergence.json summarises, in the report's order."""
    return [fw for fw in FRAMEWORK_ORDER if fw in conv]


def histories_of(out, conv, frameworks):
    """Per framework and model, the histories of the seeds a convergence run (its convergence.json
    `conv`) has for it."""
    return {fw: {m: [load_history(os.path.join(seed_dir(out, fw, m, s), "history.json"))
                     for s in conv[fw].get("seeds", conv["seeds"])] for m in MODELS} for fw in frameworks}


def convergence_histories(folder):
    """{framework: {model: [histories]}} of a convergence folder, and its convergence.json."""
    conv = read_json(folder, "convergence.json")
    return histories_of(folder, conv, frameworks_of(conv)), conv


def epochs_done(path):
    """How many epochs a history has (0 where it is missing or unreadable)."""
    try:
        return len(load_history(path)["epochs"])
    except (OSError, ValueError, KeyError, RecursionError):
        return 0


def history_done(out, fw, model, seed, epochs):
    """Whether a convergence run's seed has at least `epochs` epochs."""
    return epochs_done(os.path.join(seed_dir(out, fw, model, seed), "history.json")) >= epochs


def evaluation_of(folder, ckpt_ext):
    """A seed's test evaluation, or None where there is none or it is older than the checkpoint it
    should be of (a retrained seed's old evaluation is never reported as the new one's)."""
    path, ckpt = os.path.join(folder, "evaluation.json"), os.path.join(folder, "best" + ckpt_ext)
    try:
        if os.path.exists(ckpt) and os.stat(path).st_mtime_ns < os.stat(ckpt).st_mtime_ns:
            return None
    except OSError:
        return None
    return json_or(path, None)


def sweep_lanes(sweep_dir, sw):
    """Per batch size, the histories of a sweep's lanes (those on disk: its sweep.json `sw` is what it
    reports)."""
    return {b: [load_history(f) for f in (lane_file(sweep_dir, b, r, s) for r in sw["rates"] for s in sw["seeds"])
                if os.path.exists(f)] for b in sw["batches"]}
