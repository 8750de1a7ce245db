"""python -m flax_impl.train: the tutorial's training in JAX/Flax, same flags and outputs as torch_ref.

  python -m flax_impl.train --model both --epochs 100 --data PATH --out runs/flax
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from flax_impl.checkpoint import CODEC
from flax_impl.options import FlaxOptions, add_flax_flags
from flax_impl.trainer import FlaxTrainer, lane_mesh

FRAMEWORK = FRAMEWORKS["flax"]


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
    return 0 if config.options.num_processes else 1


def check(config, lanes):
    """The devices of --device (and the hosts of a multi-host run) are there and fit the lanes and
    the batch: checked before anything is created."""
    lane_mesh(config, len(lanes))


BACKEND = Backend(FRAMEWORK, partition_lanes=one_program, make_trainer=FlaxTrainer, codec=CODEC, options=FlaxOptions,
                  add_flags=add_flax_flags, check=check,
                  # a multi-host run may restart on other hosts; the cache only saves time
                  resume_may_change=("coordinator", "num_processes", "no_compile_cache"),
                  process_folder=process_folder, writer_depth=writer_depth)


default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
