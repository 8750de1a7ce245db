"""One frozen object holds a run's settings, built from the command line, and the one place that
says what each record keeps of them:

    run.json                 run_record()          everything that defines the run (what --resume reads)
    history.json, checkpoints  recorded(lane)        the settings that decide a lane's numbers

Settings that say how to run, not what (--overwrite, --resume, --no-progress), are never recorded.
Framework flags (Flax's --impl, PyTorch's --engine, ...) live in `extras`, in the parser's order.
"""
import argparse
import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType

RUNTIME_ONLY = ("overwrite", "resume", "no_progress")


@dataclass(frozen=True)
class RunConfig:
    framework: str
    model: str = "both"
    epochs: int = 100
    batch_size: int = 64
    seed: int = 0
    seeds: tuple | None = None        # --seeds: one history per seed, in OUT/<model>/seed_<s>
    data: str | None = None
    out: str = ""
    val_fraction: float = 0.2
    split_seed: int = 0
    subset: int | None = None
    lr: float = 1e-3
    dropout_rate: float = 0.5
    dropout_rates: tuple | None = None  # --dropout-rates: lanes of every rate (0: the BaseLine)
    device: str = "cpu"
    precision: str = "highest"        # float32 matmuls: 'highest' or 'tf32' (experiment.cli.PRECISIONS)
    overwrite: bool = False
    resume: str | None = None
    no_progress: bool = False
    extras: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_args(cls, framework, args):
        """From an argparse Namespace (or dict): the shared flags become fields, the rest extras."""
        values = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
        common = {f.name for f in dataclasses.fields(cls)} - {"framework", "extras"}
        fields = {k: values.pop(k) for k in list(values) if k in common}
        for k in ("seeds", "dropout_rates"):
            if fields.get(k) is not None:
                fields[k] = tuple(fields[k])
        return cls(framework=framework, **fields, extras=MappingProxyType(values))

    def replace(self, **changes):
        """A copy with some settings changed; names that are not shared fields go to extras."""
        common = {f.name for f in dataclasses.fields(self)}
        extras = {k: v for k, v in changes.items() if k not in common}
        unknown = set(extras) - set(self.extras)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)} for {self.framework}")
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items() if k in common}
        return dataclasses.replace(self, **changes, extras=MappingProxyType({**self.extras, **extras}))

    @property
    def seed_list(self):
        return list(self.seeds) if self.seeds is not None else [self.seed]

    def as_flags(self):
        """Every setting as the parser names it, in the parser's order (seeds as a list)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("framework", "extras")}
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        return {**out, **self.extras}

    def run_record(self):
        """What run.json keeps: everything but how to run."""
        return {k: v for k, v in self.as_flags().items() if k not in RUNTIME_ONLY}

    def recorded(self, lane):
        """What a lane's history.json and checkpoints keep: the settings behind its numbers (with
        --dropout-rates, the lane's own rate as dropout_rate)."""
        kept = {k: v for k, v in self.run_record().items() if k != "seeds"}
        rate = {"dropout_rate": lane.dropout_rate} if self.dropout_rates is not None else {}
        return {**kept, "model": lane.model, "seed": lane.seed, **rate}
