"""python -m flax_impl.export --ckpt IN --to OUT: a checkpoint in the other framework's format, the
weights converted exactly (flax_impl.convert), what its metadata says kept.

  python -m flax_impl.export --ckpt runs/flax/dropout/best.msgpack --to dropout.pt   # the tutorial's state_dict
  python -m flax_impl.export --ckpt best_ckpt.pth --to best.msgpack                  # PyTorch -> Flax

IN is read by its content (a Flax checkpoint, this project's best.pt, or the tutorial's own bare
state_dict); OUT's suffix (.pt/.pth or .msgpack) says what to write. A .pt gets its .json beside it
when IN said which model it is: where that .json exists (best.pth beside a run's best.pt and
best.json), it is refused like OUT itself, and --overwrite names both.
"""
import os

from experiment.atomic import atomic_write
from experiment.checkpoints import CHECKPOINT_FORMAT, LAYOUT
from experiment.cli import OneLineParser
from experiment.errors import UserError, exit_on_user_error
from flax_impl.checkpoint import CODEC
from flax_impl.convert import flax_to_torch
from flax_impl.evaluate import load_weights

PROG = "flax_impl.export"
TORCH_SUFFIXES, FLAX_SUFFIX = (".pt", ".pth"), ".msgpack"


def parser():
    p = OneLineParser(prog=PROG, description="A checkpoint in the other framework's format, converted exactly.")
    p.add_argument("--ckpt", required=True, help="a Flax or PyTorch checkpoint")
    p.add_argument("--to", required=True, help="the file to write: .pt/.pth (PyTorch) or .msgpack (Flax)")
    p.add_argument("--overwrite", action="store_true", help="replace --to (and the .json beside a .pt) if it exists")
    return p


def export(argv=None):
    args = parser().parse_args(argv)
    if not args.to.endswith((*TORCH_SUFFIXES, FLAX_SUFFIX)):
        raise UserError(f"--to {args.to}: name a .pt, .pth or .msgpack file (its suffix says the format)")
    if os.path.exists(args.to) and not args.overwrite:
        raise UserError(f"--to {args.to} exists; pass --overwrite to replace it")
    if not os.path.isfile(args.ckpt):
        raise UserError(f"checkpoint {args.ckpt!r} does not exist")
    name, _, params, described = load_weights(args.ckpt)
    to_torch = args.to.endswith(TORCH_SUFFIXES)
    meta = None if described.model is None else {
        "format": CHECKPOINT_FORMAT, "framework": "torch" if to_torch else "flax", "model": described.model,
        "dropout_rate": described.dropout_rate, "layout": LAYOUT, "config": {"precision": described.precision},
        "epoch": described.epoch, "exported_from": os.path.basename(args.ckpt)}
    wrote = args.to
    if to_torch:
        from torch_ref.checkpoint import CODEC as TORCH_CODEC  # torch only where it is written
        from torch_ref.checkpoint import sidecar, torch_bytes
        if meta is not None:  # the metadata goes beside it: a file the user did not name
            wrote = f"{args.to} and {sidecar(args.to)}"
            if os.path.exists(sidecar(args.to)) and not args.overwrite:
                raise UserError(f"--to {args.to} also writes {sidecar(args.to)}, and {sidecar(args.to)} exists; pass "
                                f"--overwrite to replace it, or name another file")
        sd = flax_to_torch(params)
        if meta is None:  # the weights came alone: a bare state_dict, as the tutorial saves one
            blob = torch_bytes(sd)
            atomic_write(args.to, lambda f: f.write(blob))
        else:
            TORCH_CODEC.write_params(args.to, sd, meta)
    else:  # weights alone are the BaseLine's and Dropout's alike: they evaluate as the BaseLine
        CODEC.write_params(args.to, params, meta or {"format": CHECKPOINT_FORMAT, "model": "baseline",
                                                  "dropout_rate": 0.0, "layout": LAYOUT, "config": {},
                                                  "exported_from": os.path.basename(args.ckpt)})
    print(f"{PROG}: wrote {wrote} ({name} from {args.ckpt})")
    return args.to


main = exit_on_user_error(PROG)(export)


if __name__ == "__main__":
    main()
