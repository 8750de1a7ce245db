"""The tutorial's networks as Flax Linen modules (NHWC inside, 62,006 parameters each), initialised as
PyTorch initialises them (or with Flax's defaults); their convolution and pooling in flax_impl.ops.

Layer names match torch_ref (conv1, conv2, fc1..fc3) so weights convert one to one. The conv
output is flattened in PyTorch's (C, H, W) order, so fc1's weights line up with PyTorch's.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from experiment.variants import VARIANTS
from flax_impl.ops import conv_valid, max_pool_2x2


def torch_uniform(fan_in):
    """PyTorch's default initialisation: kaiming_uniform(a=sqrt(5)) weights and U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) biases. For a=sqrt(5) the weight bound is also 1/sqrt(fan_in)."""
    bound = 1.0 / jnp.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Conv(nn.Module):
    features: int
    kernel_size: int = 5
    init_scheme: str = "torch"
    impl: str = "matmul"

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        if self.init_scheme == "torch":
            w_init = b_init = torch_uniform(k * k * cin)
        else:  # Flax's nn.Conv defaults
            w_init, b_init = nn.initializers.lecun_normal(), nn.initializers.zeros_init()
        kernel = self.param("kernel", w_init, (k, k, cin, self.features))
        bias = self.param("bias", b_init, (self.features,))
        return conv_valid(x, kernel, bias, self.impl)


def dense(x, features, init, name):
    """nn.Dense named `name` applied to x; with init 'torch', PyTorch's init for x's fan-in."""
    if init == "torch":
        bound = torch_uniform(x.shape[-1])
        return nn.Dense(features, kernel_init=bound, bias_init=bound, name=name)(x)
    return nn.Dense(features, name=name)(x)


# LeNet(dropout_rate=PER_LANE): the rate is an input of each call (one per lane of a vmapped program).
PER_LANE = "per-lane"


class LaneDropout(nn.Module):
    """nn.Dropout with the rate as an input rather than a setting, so lanes of one program can use
    different rates. Same key (make_rng in a module of the same name), same mask, same 1/(1-p)
    scaling as nn.Dropout; a lane whose rate is 0 gets its input unchanged, bit for bit."""

    @nn.compact
    def __call__(self, x, rate, deterministic):
        if deterministic:
            return x
        keep = 1.0 - rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=x.shape)
        return jnp.where(rate > 0, jax.lax.select(mask, x / keep, jnp.zeros_like(x)), x)


class LeNet(nn.Module):
    """BaseLineModel when dropout_rate is None, DropoutModel otherwise; with PER_LANE, the rate of
    each call is given as `rate` (0: exactly the BaseLine)."""
    dropout_rate: float | str | None = None
    init_scheme: str = "torch"
    impl: str = "matmul"

    @nn.compact
    def __call__(self, x, train=False, rate=None):
        x = max_pool_2x2(nn.relu(Conv(6, init_scheme=self.init_scheme, impl=self.impl, name="conv1")(x)), self.impl)
        x = max_pool_2x2(nn.relu(Conv(16, init_scheme=self.init_scheme, impl=self.impl, name="conv2")(x)), self.impl)
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # PyTorch's flatten order
        x = nn.relu(dense(self._drop(1, x, train, rate), 120, self.init_scheme, "fc1"))
        x = nn.relu(dense(self._drop(2, x, train, rate), 84, self.init_scheme, "fc2"))
        return dense(self._drop(3, x, train, rate), 10, self.init_scheme, "fc3")

    def _drop(self, i, x, train, rate):
        """dropout_1..3 before fc1..fc3, as in the tutorial; masks from the 'dropout' rng."""
        if self.dropout_rate is None:
            return x
        if self.dropout_rate == PER_LANE:
            return LaneDropout(name=f"dropout_{i}")(x, rate, not train)
        return nn.Dropout(self.dropout_rate, deterministic=not train, name=f"dropout_{i}")(x)


def build_model(name, dropout_rate=0.5, init_scheme="torch", impl="matmul"):
    """A variant of experiment.variants (Dropout's at dropout_rate), or 'lanes': every lane with its
    own rate (PER_LANE)."""
    if name == "lanes":
        return LeNet(PER_LANE, init_scheme, impl)
    if name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}")
    return LeNet(dropout_rate if VARIANTS[name].has_dropout else None, init_scheme, impl)


def count_parameters(params):
    return sum(p.size for p in jax.tree_util.tree_leaves(params))
