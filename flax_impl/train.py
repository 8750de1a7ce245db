"""python -m flax_impl.train: the tutorial's training in JAX/Flax, same flags and outputs as torch_ref.

  python -m flax_impl.train --model both --epochs 100 --data PATH --out runs/flax
"""
from experiment.entry import Backend, train_main
from experiment.frameworks import FRAMEWORKS
from flax_impl.checkpoint import CODEC
from flax_impl.options import FlaxOptions
from flax_impl.trainer import FlaxTrainer, lane_mesh


class OneProgram:
    """Every lane (models x dropout rates x seeds) in one compiled program."""

    def partition(self, config, lanes):
        return [lanes]

    def check(self, config, lanes):
        """The devices of --device (and the hosts of a multi-host run) are there and fit the lanes and
        the batch: checked before anything is created."""
        lane_mesh(config, len(lanes))

    def make(self, config, lanes, splits):
        return FlaxTrainer(config, lanes, splits)


BACKEND = Backend(FRAMEWORKS["flax"], options=FlaxOptions, codec=CODEC, trainers=OneProgram())
default = BACKEND.default
main = train_main(BACKEND)


if __name__ == "__main__":
    main()
