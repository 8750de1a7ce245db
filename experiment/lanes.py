"""Lanes: the (network, dropout rate, seed) combinations a run trains. Where each one's files go is
experiment.records'; which lanes train together is each framework's (Backend.partition_lanes)."""
from dataclasses import dataclass

from experiment.errors import UserError
from experiment.variants import MODELS, TUTORIAL_RATE, VARIANTS, variant_of_rate

# A lane's state is 0.75 MB (weights and Adam's moments) plus its activations; 1,024 lanes are far
# beyond any study here and still fit one GPU.
MAX_LANES = 1024


@dataclass(frozen=True)
class Lane:
    model: str            # the network: a variant's name (experiment.variants)
    dropout_rate: float   # the rate its dropout layers use (0 for the BaseLine)
    seed: int             # init, dropout masks and batch order
    folder: str           # its folder under OUT: 'baseline', 'dropout', 'dropout_0.25', ...

    def record(self):
        """What a train state records of the lane (its folder under the name "group", as written since format 2)."""
        return {"model": self.model, "dropout_rate": self.dropout_rate, "seed": self.seed, "group": self.folder}


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
        return [Lane(m, VARIANTS[m].rate(config.dropout_rate), s, m) for m in models for s in seeds]
    if config.model != "both" or config.dropout_rate != TUTORIAL_RATE:
        raise UserError("--dropout-rates trains the BaseLine (rate 0) and Dropout at each rate given; "
                        "drop --model and --dropout-rate")
    folders = {}
    for r in config.dropout_rates:  # one lane's files must never overwrite another's
        other = folders.setdefault(folder_name(r), r)
        if other != r:
            raise UserError(f"--dropout-rates {other:.10g} and {r:.10g} would both write {folder_name(r)}/; "
                            f"give rates that differ in their first 6 digits")
    return [Lane(variant_of_rate(r).name, r, s, folder_name(r)) for r in config.dropout_rates for s in seeds]


def folder_name(rate):
    """Where a rate's lanes write: the tutorial's pair keeps baseline/ and dropout/."""
    if rate == 0:
        return "baseline"
    return "dropout" if rate == TUTORIAL_RATE else f"dropout_{rate:g}"


def by_folder(config, lanes):
    """The lanes partitioned by folder (network and rate), in the order of the run: one trainer each."""
    groups = {}
    for lane in lanes:
        groups.setdefault(lane.folder, []).append(lane)
    return list(groups.values())
