"""Deliberately broken Flax variants of the models, for the negative controls: each parity check
must fail on the bug it is there to catch."""
import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from flax_impl.models import Conv, dense


class BrokenLeNet(nn.Module):
    """LeNet with one knob per known porting bug; all knobs off is the correct model."""
    dropout_rate: float | None = None
    flatten_nhwc: bool = False      # flatten in Flax's (H, W, C) order instead of PyTorch's (C, H, W)
    same_padding: bool = False      # nn.Conv's default padding
    pool_stride_1: bool = False     # nn.max_pool's default stride
    unscaled_dropout: bool = False  # dropout without the 1/(1-p) scaling
    dropout_after_fc: bool = False  # dropout on each layer's output instead of its input

    def conv(self, x, features, name):
        if self.same_padding:  # SAME for a 5x5 kernel: pad 2 on each side, then VALID
            x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
        return Conv(features, impl="xla", name=name)(x)

    def pool(self, x):
        stride = (1, 1, 1, 1) if self.pool_stride_1 else (1, 2, 2, 1)
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), stride, "VALID")

    def drop(self, i, x, train):
        if self.dropout_rate is None:
            return x
        y = nn.Dropout(self.dropout_rate, deterministic=not train, name=f"dropout_{i}")(x)
        return y * (1 - self.dropout_rate) if self.unscaled_dropout and train else y

    @nn.compact
    def __call__(self, x, train=False):
        x = self.pool(nn.relu(self.conv(x, 6, "conv1")))
        x = self.pool(nn.relu(self.conv(x, 16, "conv2")))
        x = x.reshape(x.shape[0], -1) if self.flatten_nhwc else jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)
        if self.dropout_after_fc:
            x = self.drop(1, nn.relu(dense(x, 120, "torch", "fc1")), train)
            x = self.drop(2, nn.relu(dense(x, 84, "torch", "fc2")), train)
            return self.drop(3, dense(x, 10, "torch", "fc3"), train)
        x = nn.relu(dense(self.drop(1, x, train), 120, "torch", "fc1"))
        x = nn.relu(dense(self.drop(2, x, train), 84, "torch", "fc2"))
        return dense(self.drop(3, x, train), 10, "torch", "fc3")
