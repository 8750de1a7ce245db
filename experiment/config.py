"""One frozen object holds a run's settings, built from the command line, and the one place that
says what each record keeps of them:

    run.json                 run_record()          everything that defines the run (what --resume reads)
    history.json, checkpoints  recorded(lane)        the settings that decide a lane's numbers

Settings that say how to run, not what (--overwrite, --resume, --no-progress), are never recorded.
Framework flags (Flax's --impl, PyTorch's --engine, ...) live in `options`, a frozen dataclass of
the framework's (flax_impl.options, torch_ref.options). The defaults written here are the command
line's (experiment.cli reads them from this class).
"""
import argparse
import dataclasses
from dataclasses import dataclass

from experiment.split import DEFAULT_VAL_FRACTION
from experiment.variants import TUTORIAL_RATE

RUNTIME_ONLY = ("overwrite", "resume", "no_progress")
# float32 matmuls and convolutions: 'highest' computes them in full float32 on every device, so both
# frameworks compute the same maths; 'tf32' lets GPUs use TensorFloat-32 (10-bit mantissa) in both.
PRECISIONS = ("highest", "tf32")


@dataclass(frozen=True)
class RunConfig:
    framework: str
    model: str = "both"
    epochs: int = 100                 # the tutorial's
    batch_size: int = 64              # the tutorial states none; 64 divides the 40,000 training images exactly
    seed: int = 0
    seeds: tuple | None = None        # --seeds: one history per seed, in OUT/<model>/seed_<s>
    data: str | None = None
    out: str = ""
    val_fraction: float = DEFAULT_VAL_FRACTION
    split_seed: int = 0
    subset: int | None = None
    lr: float = 1e-3                  # Adam's default, as the tutorial uses it
    dropout_rate: float = TUTORIAL_RATE
    dropout_rates: tuple | None = None  # --dropout-rates: lanes of every rate (0: the BaseLine)
    device: str = "cpu"
    precision: str = "highest"        # float32 matmuls: 'highest' or 'tf32' (PRECISIONS)
    eval_train: bool = False          # also measure the training set in eval mode after each epoch
    overwrite: bool = False
    resume: str | None = None
    no_progress: bool = False
    options: object = None            # the framework's settings: a frozen dataclass, fields in the parser's order

    @classmethod
    def from_args(cls, framework, args, options):
        """From an argparse Namespace (or dict): the shared flags become fields, the rest the
        framework's `options` (its dataclass; an unknown name is a TypeError)."""
        values = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
        common = {f.name for f in dataclasses.fields(cls)} - {"framework", "options"}
        fields = {k: values.pop(k) for k in list(values) if k in common}
        for k in ("seeds", "dropout_rates"):
            if fields.get(k) is not None:
                fields[k] = tuple(fields[k])
        return cls(framework=framework, **fields, options=options(**values))

    def replace(self, **changes):
        """A copy with some settings changed; names that are not shared fields are the framework's options."""
        common = {f.name for f in dataclasses.fields(self)}
        mine = {k: v for k, v in changes.items() if k not in common}
        unknown = set(mine) - {f.name for f in dataclasses.fields(self.options)}
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)} for {self.framework}")
        changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items() if k in common}
        return dataclasses.replace(self, **changes, options=dataclasses.replace(self.options, **mine))

    @property
    def seed_list(self):
        return list(self.seeds) if self.seeds is not None else [self.seed]

    def as_flags(self):
        """Every setting as the parser names it, in the parser's order (seeds as a list)."""
        shared = [f.name for f in dataclasses.fields(self) if f.name not in ("framework", "options")]
        out = {k: getattr(self, k) for k in shared}
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        return {**out, **dataclasses.asdict(self.options)}

    def run_record(self):
        """What run.json keeps: everything but how to run."""
        return {k: v for k, v in self.as_flags().items() if k not in RUNTIME_ONLY}

    def recorded(self, lane):
        """What a lane's history.json and checkpoints keep: the settings behind its numbers, the
        lane's own dropout rate as dropout_rate (0 for the BaseLine)."""
        kept = {k: v for k, v in self.run_record().items() if k != "seeds"}
        return {**kept, "model": lane.model, "seed": lane.seed, "dropout_rate": lane.dropout_rate}
