"""Deliberately broken Flax variants of the models, for the negative controls: each parity check
must fail on the bug it is there to catch."""
from dataclasses import dataclass
from functools import cached_property

import jax.numpy as jnp
from flax import nnx
from jax import lax

from flax_impl.models import BaseLineModel, graph_of, linear


@dataclass(frozen=True)
class BrokenNetwork:
    """One knob per known porting bug (all off: the correct model), used where a
    flax_impl.models.Network is (build, graph)."""
    flatten_nhwc: bool = False   # flatten in Flax's (H, W, C) order instead of PyTorch's (C, H, W)
    same_padding: bool = False   # nnx.Conv's default padding
    pool_stride_1: bool = False  # nnx.max_pool's default stride

    def build(self, rngs):
        return BrokenLeNet(self, rngs=rngs)

    @cached_property
    def graph(self):
        return graph_of(self.build)


class BrokenLeNet(BaseLineModel):
    """BaseLineModel (XLA's convolution and pooling) with the bugs a BrokenNetwork names."""

    def __init__(self, bugs, *, rngs):
        super().__init__(impl="xla", rngs=rngs)
        self.bugs = bugs
        side = 32
        for _ in range(2):  # each 5x5 conv and 2x2 pool as this mutant computes them
            side = side if bugs.same_padding else side - 4
            side = side - 1 if bugs.pool_stride_1 else side // 2
        self.fc1 = linear(16 * side * side, 120, init="torch", rngs=rngs)  # its features' size

    def features(self, x):
        for conv in (self.conv1, self.conv2):
            if self.bugs.same_padding:  # SAME for a 5x5 kernel: pad 2 on each side, then VALID
                x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
            stride = (1, 1, 1, 1) if self.bugs.pool_stride_1 else (1, 2, 2, 1)
            x = lax.reduce_window(nnx.relu(conv(x)), -jnp.inf, lax.max, (1, 2, 2, 1), stride, "VALID")
        flat = x if self.bugs.flatten_nhwc else jnp.transpose(x, (0, 3, 1, 2))
        return flat.reshape(x.shape[0], -1)
