"""Lanes: the (network, dropout rate, seed) combinations a run trains, and where each one's files go.

    OUT/<group>/                 one seed (--seed): the tutorial's layout
    OUT/<group>/seed_<s>/        several seeds (--seeds)
    OUT/<group>/train_state.*    a trainer's lanes of one group: what --resume continues from
    OUT/train_state.*            a trainer whose lanes span groups (one program for all)
"""
import os

from experiment.cli import MODELS, TUTORIAL_RATE
from experiment.errors import UserError
from experiment.loop import TRAIN_STATE
from experiment.trainer import Lane

# A lane's state is 0.75 MB (weights and Adam's moments) plus its activations; 1,024 lanes are far
# beyond any study here and still fit one GPU.
MAX_LANES = 1024


def plan_lanes(config):
    """Every (model, rate, seed) of the run, grouped by model and rate, seeds in the order given."""
    lanes = _plan(config)
    if len(lanes) > MAX_LANES:
        raise UserError(f"{len(lanes):,} lanes (models or rates x seeds) is more than {MAX_LANES:,}; "
                        f"train fewer seeds or rates at a time")
    return lanes


def _plan(config):
    seeds = config.seed_list
    if config.dropout_rates is None:
        models = MODELS if config.model == "both" else (config.model,)
        rate = {"baseline": 0.0, "dropout": config.dropout_rate}
        return [Lane(m, rate[m], s, m) for m in models for s in seeds]
    if config.model != "both" or config.dropout_rate != TUTORIAL_RATE:
        raise UserError("--dropout-rates trains the BaseLine (rate 0) and Dropout at each rate given; "
                        "drop --model and --dropout-rate")
    folders = {}
    for r in config.dropout_rates:  # one lane's files must never overwrite another's
        other = folders.setdefault(group_name(r), r)
        if other != r:
            raise UserError(f"--dropout-rates {other:.10g} and {r:.10g} would both write {group_name(r)}/; "
                            f"give rates that differ in their first 6 digits")
    return [Lane("baseline" if r == 0 else "dropout", r, s, group_name(r)) for r in config.dropout_rates
            for s in seeds]


def group_name(rate):
    """Where a rate's lanes write: the tutorial's pair keeps baseline/ and dropout/."""
    if rate == 0:
        return "baseline"
    return "dropout" if rate == TUTORIAL_RATE else f"dropout_{rate:g}"


def lane_dir(config, lane):
    if config.seeds is None:
        return os.path.join(config.out, lane.group)
    return os.path.join(config.out, lane.group, f"seed_{lane.seed}")


def train_state_path(out, lanes, ext):
    groups = {lane.group for lane in lanes}
    folder = os.path.join(out, groups.pop()) if len(groups) == 1 else out
    return os.path.join(folder, TRAIN_STATE + ext)


def by_group(config, lanes):
    """One trainer per group (network and rate), in the order of the run."""
    groups = {}
    for lane in lanes:
        groups.setdefault(lane.group, []).append(lane)
    return list(groups.values())
