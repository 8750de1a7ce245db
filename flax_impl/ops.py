"""Convolution and pooling, in two mathematically identical formulations.

`xla`: lax.conv_general_dilated / reduce_window, what nn.Conv and nn.max_pool lower to.
`matmul`: the convolution as one matrix product over patches built from kh*kw shifted slices
(im2col), pooling as the max of four strided slices. On CPU, XLA's convolution and select_and_scatter kernels
are slow for these tiny channel counts, while a matmul and elementwise ops are fast; on GPU both
are fine. The parity tests check the two against each other and against PyTorch.
"""
import jax.numpy as jnp
from jax import lax

IMPLS = ("matmul", "xla")


def conv_valid(x, kernel, bias, impl="matmul"):
    """VALID, stride-1 convolution. x: (B, H, W, C); kernel: (kh, kw, C, O) (Flax's layout)."""
    if impl == "xla":
        y = lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias
    kh, kw, c, o = kernel.shape
    b, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    cols = [x[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(cols, axis=-1).reshape(b * ho * wo, kh * kw * c)  # (i, j, c) order
    y = patches @ kernel.reshape(kh * kw * c, o)
    return y.reshape(b, ho, wo, o) + bias


def max_pool_2x2(x, impl="matmul"):
    """2x2 max pooling with stride 2 (PyTorch's MaxPool2d(2, 2)); H and W must be even."""
    if impl == "xla":
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    # Four strided slices and elementwise maxima: their gradient is a few selects, 7x faster on
    # CPU than reduce_window's select_and_scatter or a reshape + max over (2, 2) windows.
    top = jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2])
    bottom = jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2])
    return jnp.maximum(top, bottom)
