"""python -m flax_impl.train: the tutorial's training in JAX/Flax, same flags and outputs as torch_ref.

  python -m flax_impl.train --model both --epochs 100 --data PATH --out runs/flax
"""
import argparse

from experiment.cli import checked, positive_int
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from flax_impl.models import INITS
from flax_impl.ops import IMPLS
from flax_impl.steps import MICRO_BATCH
from flax_impl.trainer import FlaxTrainer, lane_mesh

FRAMEWORK = FRAMEWORKS["flax"]
FUSES = ("scan", "step")
non_negative_int = checked(int, lambda v: v >= 0, ">= 0")


def add_flax_flags(p):
    p.add_argument("--init", choices=INITS, default="torch",
                   help="torch: PyTorch's default init (comparable curves); flax: Flax's defaults")
    p.add_argument("--impl", choices=IMPLS, default="matmul",
                   help="conv/pool formulation: matmul (im2col, fast on CPU) or xla (lax.conv)")
    p.add_argument("--fuse", choices=FUSES, default="scan",
                   help="scan: each epoch is one compiled lax.scan; step: one jit call per batch")
    # Speed settings (the same numbers, checked against the defaults by tests/test_flax_variants.py);
    # the speed runner times them (benchmarks.speed's -unrollK, -donate, -nochunk variants).
    p.add_argument("--scan-unroll", type=positive_int, default=1,
                   help="steps per iteration of the epoch's lax.scan (unrolled; default %(default)s)")
    p.add_argument("--donate", action="store_true",
                   help="donate the train state's buffers to each step (checkpoints are taken from a device copy)")
    p.add_argument("--micro-batch", type=non_negative_int, default=MICRO_BATCH,
                   help="split a batch that is a multiple of this into chunks of it whose gradients are averaged "
                        "(keeps a chunk in the CPU's cache); 0: never (default %(default)s)")
    p.add_argument("--data-parallel", action="store_true",
                   help="split each batch over all devices of --device (default: devices split the lanes)")
    p.add_argument("--coordinator", metavar="HOST:PORT", type=host_port, default=None,
                   help="several hosts: process 0's address for jax.distributed.initialize")
    p.add_argument("--num-processes", type=positive_int, default=None, help="several hosts: how many processes")
    p.add_argument("--process-id", type=non_negative_int, default=None, help="several hosts: this process's id")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile afresh instead of loading programs from JAX's cache on disk "
                        "(also: LENET_COMPILE_CACHE=0)")


def host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, got {text!r}")
    return text


def process_folder(args):
    """Several hosts: process 0 writes OUT itself, process i its own copy in OUT/process_<i>
    (what --resume reads there), so processes never write the same file."""
    return f"process_{args.process_id}" if args.process_id else None


def one_program(config, lanes):
    """Every lane (models x dropout rates x seeds) in one compiled program."""
    return [lanes]


def writer_depth(config):
    """Write epoch N's files while epoch N+1 trains; inline with several hosts, where gathering a
    state is a collective that must not run beside the main thread's programs."""
    return 0 if config.extras["num_processes"] else 1


def check(config, lanes):
    """The devices of --device (and the hosts of a multi-host run) are there and fit the lanes and
    the batch: checked before anything is created."""
    lane_mesh(config, len(lanes))


BACKEND = Backend(FRAMEWORK, group_lanes=one_program, make_trainer=FlaxTrainer, add_flags=add_flax_flags, check=check,
                  # a multi-host run may restart on other hosts; the cache only saves time
                  resume_may_change=("coordinator", "num_processes", "no_compile_cache"),
                  process_folder=process_folder, writer_depth=writer_depth)


default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
