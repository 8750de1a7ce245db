"""Flax's own settings (RunConfig.options) and their flags: each default written once, here.

None of the speed settings changes what a step computes (tests/test_flax_variants.py); the speed
runner times them (benchmarks.runners.speed's -unrollK, -donate, -nochunk variants).
"""
import argparse
from dataclasses import dataclass
from typing import ClassVar

from experiment.cli import checked, positive_int

INITS = ("torch", "flax")
IMPLS = ("matmul", "xla")
FUSES = ("scan", "step")
non_negative_int = checked(int, lambda v: v >= 0, ">= 0")

# A batch that is a multiple of this is trained in chunks of it, their gradients averaged (the batch's
# gradient, summed in another order): on a CPU a chunk's activations stay in cache, so batch 256 trains
# as fast per image as 64. --micro-batch changes it (0: never), e.g. on a GPU, where chunks serialise.
MICRO_BATCH = 64


@dataclass(frozen=True)
class FlaxOptions:
    init: str = "torch"             # torch: PyTorch's default init (comparable curves); flax: Flax's defaults
    impl: str = "matmul"            # conv/pool formulation: matmul (im2col, fast on CPU) or xla (lax.conv)
    fuse: str = "scan"              # scan: each epoch one compiled lax.scan; step: one jit call per batch
    scan_unroll: int = 1            # steps per iteration of the epoch's lax.scan
    donate: bool = False            # each step reuses the state's buffers (checkpoints from a device copy)
    micro_batch: int = MICRO_BATCH  # 0: whole batches
    data_parallel: bool = False     # split each batch over the devices (default: devices split the lanes)
    coordinator: str | None = None  # several hosts: process 0's HOST:PORT for jax.distributed
    num_processes: int | None = None
    process_id: int | None = None
    no_compile_cache: bool = False  # compile afresh instead of loading programs from JAX's cache on disk
    # A multi-host run may restart on other hosts; the cache only saves time.
    RESUME_MAY_CHANGE: ClassVar[tuple] = ("coordinator", "num_processes", "no_compile_cache")

    @classmethod
    def add_flags(cls, parser):
        add_flax_flags(parser)

    @classmethod
    def process_folder(cls, args):
        """Several hosts: process 0 writes OUT itself, process i its own copy in OUT/process_<i>
        (what --resume reads there), so processes never write the same file."""
        return f"process_{args.process_id}" if args.process_id else None

    def writer_depth(self):
        """Write epoch N's files while epoch N+1 trains; inline with several hosts, where gathering a
        state is a collective that must not run beside the main thread's programs."""
        return 0 if self.num_processes else 1


def add_flax_flags(p):
    d = FlaxOptions
    p.add_argument("--init", choices=INITS, default=d.init,
                   help="torch: PyTorch's default init (comparable curves); flax: Flax's defaults")
    p.add_argument("--impl", choices=IMPLS, default=d.impl,
                   help="conv/pool formulation: matmul (im2col, fast on CPU) or xla (lax.conv)")
    p.add_argument("--fuse", choices=FUSES, default=d.fuse,
                   help="scan: each epoch is one compiled lax.scan; step: one jit call per batch")
    p.add_argument("--scan-unroll", type=positive_int, default=d.scan_unroll,
                   help="steps per iteration of the epoch's lax.scan (unrolled; default %(default)s)")
    p.add_argument("--donate", action="store_true",
                   help="donate the train state's buffers to each step (checkpoints are taken from a device copy)")
    p.add_argument("--micro-batch", type=non_negative_int, default=d.micro_batch,
                   help="split a batch that is a multiple of this into chunks of it whose gradients are averaged "
                        "(keeps a chunk in the CPU's cache); 0: never (default %(default)s)")
    p.add_argument("--data-parallel", action="store_true",
                   help="split each batch over all devices of --device (default: devices split the lanes)")
    p.add_argument("--coordinator", metavar="HOST:PORT", type=host_port, default=d.coordinator,
                   help="several hosts: process 0's address for jax.distributed.initialize")
    p.add_argument("--num-processes", type=positive_int, default=d.num_processes,
                   help="several hosts: how many processes")
    p.add_argument("--process-id", type=non_negative_int, default=d.process_id, help="several hosts: this process's id")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile afresh instead of loading programs from JAX's cache on disk "
                        "(also: LENET_COMPILE_CACHE=0)")


def host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in 1..65535, got {text!r}")
    return text
