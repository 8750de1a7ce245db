"""The command-line flags both frameworks share, so `torch_ref.train` and `flax_impl.train` match
flag for flag, and the one-line error every bad flag gets. Parsed flags become a RunConfig."""
import argparse
import copy

from experiment.config import PRECISIONS, RunConfig
from experiment.data import SOURCES_HELP
from experiment.errors import UserError
from experiment.variants import MODELS

DEVICE_HELP = "auto, cpu, gpu (CUDA for PyTorch) or tpu (JAX only); default %(default)s"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is a UserError: one line (`prog: error: ...`), exit 2, where the
    command's entry point reports it (experiment.errors.exit_on_user_error)."""

    def error(self, message):
        raise UserError(message)


def checked(convert, ok, requirement):
    """An argparse type: convert the text, then insist on ok(value)."""
    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {v}")
        return v
    return parse


positive_int = checked(int, lambda v: v > 0, "> 0")
MAX_EPOCHS = 100_000  # the study runs 300; 100,000 epochs of CIFAR-10 are weeks on any one device
epochs_count = checked(int, lambda v: 0 < v <= MAX_EPOCHS, f"in [1, {MAX_EPOCHS:,}]")
fraction = checked(float, lambda v: 0.0 < v < 1.0, "in (0, 1)")
dropout_rate = checked(float, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
positive_float = checked(float, lambda v: 0.0 < v < float("inf"), "a finite number > 0")
SEED_LIMIT = 2**32  # NumPy, JAX and PyTorch all take seeds in [0, 2**32)
seed_value = checked(int, lambda v: 0 <= v < SEED_LIMIT, "in [0, 2**32)")


def seed_list(text):
    try:
        seeds = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 0,1,2, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeated seed in {text!r}")
    for s in seeds:
        seed_value(str(s))
    return seeds


def list_of(item, what, noun="value"):
    """An argparse type: comma-separated values, each checked by `item`, none repeated."""
    def parse(text):
        try:
            values = [item(t) for t in text.split(",")]
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} ({e})") from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeated {noun} in {text!r}")
        return values
    return parse


rate_list = list_of(dropout_rate, "rates in [0, 1) like 0,0.25,0.5", "rate")


def train_parser(fw, add_flags=None):
    """The train command's parser for framework `fw` (experiment.frameworks.Framework), with the
    framework's own flags added by add_flags(parser)."""
    p = OneLineParser(prog=fw.train, description=f"Train the tutorial's LeNet models on CIFAR-10 ({fw.name}).")
    d = RunConfig  # every default once, in experiment.config
    p.add_argument("--model", choices=MODELS + ("both",), default=d.model)
    p.add_argument("--epochs", type=epochs_count, default=d.epochs)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--seed", type=seed_value, default=d.seed, help="init, dropout and batch order")
    p.add_argument("--seeds", type=seed_list, default=d.seeds,
                   help="train several seeds at once, e.g. 0,1,2,3,4 (one history per seed + mean/std figure)")
    p.add_argument("--data", default=d.data, help=SOURCES_HELP)
    p.add_argument("--out", default=f"runs/{fw.name}", help="output folder (default %(default)s)")
    p.add_argument("--val-fraction", type=fraction, default=d.val_fraction)
    p.add_argument("--split-seed", type=seed_value, default=d.split_seed, help="train/val split (same for all seeds)")
    p.add_argument("--subset", type=positive_int, default=d.subset,
                   help="train on N training images drawn at random, seeded by --split-seed (smoke runs)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="Adam learning rate (default: Adam's 1e-3)")
    p.add_argument("--dropout-rate", type=dropout_rate, default=d.dropout_rate)
    p.add_argument("--dropout-rates", type=rate_list, default=d.dropout_rates,
                   help="train every rate as lanes, e.g. 0,0.1,0.25,0.5,0.7 (0: BaseLine, in baseline/; 0.5: "
                        "dropout/; others: dropout_<rate>/); replaces --model and --dropout-rate")
    p.add_argument("--device", choices=fw.devices, default=fw.default_device, help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="float32 matmuls/convolutions: highest (full float32, the default) or tf32 (GPUs' TF32)")
    p.add_argument("--eval-train", action="store_true",
                   help="after each epoch also measure loss and accuracy on the training set in eval mode (no "
                        "dropout): history rows gain train_eval_loss and train_eval_acc (one more forward pass "
                        "over the training images an epoch)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR with its saved settings (--epochs may extend it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, one line per epoch")
    if add_flags:
        add_flags(p)
    return p


def default_config(fw, add_flags, options, **overrides):
    """The command line's defaults as a RunConfig (`options`: the framework's dataclass), for code
    that builds a trainer itself."""
    return RunConfig.from_args(fw.name, train_parser(fw, add_flags).parse_args([]), options).replace(**overrides)


def explicit_flags(parser, argv):
    """The settings actually given on the command line (not left at their defaults)."""
    unset = object()  # not a string, so argparse leaves it alone
    quiet = copy.deepcopy(parser)
    quiet.set_defaults(**{k: unset for k in vars(parser.parse_args([]))})
    return [k for k, v in vars(quiet.parse_args(argv)).items() if v is not unset]


def evaluate_parser(fw):
    p = OneLineParser(prog=fw.evaluate, description=f"Test accuracy and confusion matrix of a checkpoint ({fw.name}).")
    p.add_argument("--ckpt", required=True, action="extend", nargs="+",
                   help="checkpoints (--ckpt a b c, or --ckpt a --ckpt b): each evaluated on data loaded once")
    p.add_argument("--data", default=None, help=SOURCES_HELP)
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's folder)")
    p.add_argument("--device", choices=fw.devices, default=fw.default_device, help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="float32 matmuls/convolutions (default: what the checkpoint was trained at, else highest)")
    return p
