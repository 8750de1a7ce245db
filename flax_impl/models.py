"""The tutorial's two networks as Flax NNX modules (NHWC inside, 62,006 parameters each), initialised
as PyTorch initialises them (or with Flax's defaults); their convolution and pooling in flax_impl.ops.

Layers are built in __init__ with explicit sizes and named as torch_ref's (conv1, conv2, fc1..fc3), so
weights convert one to one. The conv output is flattened in PyTorch's (C, H, W) order, so fc1's weights
line up with PyTorch's. DropoutModel's rate is an input of each call, not a setting: lanes of
different rates (0: the BaseLine, bit for bit) are one compiled program (flax_impl.steps).
"""
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from flax_impl.ops import conv_valid, max_pool_2x2


def torch_uniform(fan_in):
    """PyTorch's default initialisation: kaiming_uniform(a=sqrt(5)) weights and U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) biases. For a=sqrt(5) the weight bound is also 1/sqrt(fan_in)."""
    bound = 1.0 / jnp.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def initializers(init, fan_in):
    """(kernel, bias) initializers: PyTorch's for `fan_in` ('torch') or Flax's nnx.Linear/nnx.Conv defaults."""
    if init == "torch":
        return torch_uniform(fan_in), torch_uniform(fan_in)
    return nnx.initializers.lecun_normal(), nnx.initializers.zeros_init()


class Conv(nnx.Module):
    """A VALID, stride-1 convolution with a (k, k, in, out) kernel, as nnx.Conv's, computed as
    flax_impl.ops formulates it (`impl`)."""

    def __init__(self, in_channels, out_channels, kernel_size, *, init, impl, rngs):
        k = kernel_size
        kernel_init, bias_init = initializers(init, k * k * in_channels)
        self.kernel = nnx.Param(kernel_init(rngs.params(), (k, k, in_channels, out_channels)))
        self.bias = nnx.Param(bias_init(rngs.params(), (out_channels,)))
        self.impl = impl

    def __call__(self, x):
        return conv_valid(x, self.kernel[...], self.bias[...], self.impl)


def linear(in_features, out_features, *, init, rngs):
    kernel_init, bias_init = initializers(init, in_features)
    return nnx.Linear(in_features, out_features, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)


class Dropout(nnx.Module):
    """nnx.Dropout with the rate an input of the call: the same mask from the same key (the 'dropout'
    stream of the call's rngs), the same 1/(1-rate) scaling. Rate 0 returns its input, bit for bit,
    and no mask reaches the gradient; no rngs (evaluation): its input."""

    def __call__(self, x, rate, rngs):
        if rngs is None:
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(rngs.dropout(), p=keep, shape=x.shape)
        return jnp.where(rate > 0, lax.select(mask, x / keep, jnp.zeros_like(x)), x)


class BaseLineModel(nnx.Module):
    def __init__(self, *, init="torch", impl="matmul", rngs: nnx.Rngs):
        self.conv1 = Conv(3, 6, 5, init=init, impl=impl, rngs=rngs)
        self.conv2 = Conv(6, 16, 5, init=init, impl=impl, rngs=rngs)
        self.fc1 = linear(16 * 5 * 5, 120, init=init, rngs=rngs)
        self.fc2 = linear(120, 84, init=init, rngs=rngs)
        self.fc3 = linear(84, 10, init=init, rngs=rngs)
        self.impl = impl

    def features(self, x):
        """conv1, conv2 (each ReLU, 2x2 max pool), flattened in PyTorch's (C, H, W) order."""
        x = max_pool_2x2(nnx.relu(self.conv1(x)), self.impl)
        x = max_pool_2x2(nnx.relu(self.conv2(x)), self.impl)
        return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)

    def __call__(self, x, rate=None, rngs=None):
        """Logits of NHWC images. A training step's `rate` and `rngs` (its dropout) change nothing here:
        both models are called alike."""
        x = nnx.relu(self.fc1(self.features(x)))
        x = nnx.relu(self.fc2(x))
        return self.fc3(x)


class DropoutModel(BaseLineModel):
    def __init__(self, *, init="torch", impl="matmul", rngs: nnx.Rngs):
        super().__init__(init=init, impl=impl, rngs=rngs)
        self.dropout_1 = Dropout()
        self.dropout_2 = Dropout()
        self.dropout_3 = Dropout()

    def __call__(self, x, rate=None, rngs=None):
        """Logits of NHWC images; a training step drops units before fc1, fc2 and fc3 with probability
        `rate` (a number or a traced scalar), its masks drawn from rngs.dropout (nnx.Rngs(dropout=key));
        no rngs: evaluation, no dropout."""
        x = self.features(x)
        x = nnx.relu(self.fc1(self.dropout_1(x, rate, rngs)))
        x = nnx.relu(self.fc2(self.dropout_2(x, rate, rngs)))
        return self.fc3(self.dropout_3(x, rate, rngs))


MODEL_CLASSES = {"baseline": BaseLineModel, "dropout": DropoutModel}  # a network per experiment.variants name


@dataclass(frozen=True)
class Network:
    """A variant's network with Flax's --init and --impl: how its parameters are drawn (build) and its
    graph (the nnx.GraphDef that nnx.merge rebuilds the module from, given its parameters). Hashable:
    equal settings, equal graph."""
    model: str
    init: str = "torch"
    impl: str = "matmul"

    def __post_init__(self):
        if self.model not in MODEL_CLASSES:
            raise ValueError(f"unknown model {self.model!r}")

    def build(self, rngs):
        """The module, its parameters drawn from rngs.params."""
        return MODEL_CLASSES[self.model](init=self.init, impl=self.impl, rngs=rngs)

    @cached_property
    def graph(self):
        return graph_of(self.build)


def graph_of(build):
    """The nnx.GraphDef of the module build(rngs) returns, traced only (nnx.eval_shape): nothing is
    drawn or computed."""
    return nnx.graphdef(nnx.eval_shape(lambda: build(nnx.Rngs(0))))


def count_parameters(params):
    return sum(p.size for p in jax.tree_util.tree_leaves(params))
