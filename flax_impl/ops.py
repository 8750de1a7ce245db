"""Convolution and pooling, in two mathematically identical formulations.

`xla`: lax.conv_general_dilated / reduce_window, what nn.Conv and nn.max_pool lower to.
`matmul`: the convolution as one matrix product over patches built from shifted slices (im2col
over width tiles, see tiled_conv), pooling as the max of four strided slices. On CPU, XLA's
convolution and select_and_scatter kernels are slow for these tiny channel counts, while a matmul
and elementwise ops are fast; on GPU both are fine. The parity tests check the two against each
other and against PyTorch.
"""
import jax.numpy as jnp
import numpy as np
from jax import lax


def conv_valid(x, kernel, bias, impl="matmul"):
    """VALID, stride-1 convolution. x: (B, H, W, C); kernel: (kh, kw, C, O) (Flax's layout)."""
    if impl == "xla":
        y = lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias
    return tiled_conv(x, kernel, tile_width(x.shape[2] - kernel.shape[1] + 1)) + bias


def tile_width(out_width, widest=4):
    """Output columns per patch row: the widest divisor of the output width up to `widest`."""
    return max(d for d in range(1, widest + 1) if out_width % d == 0)


def tiled_conv(x, kernel, tile):
    """Convolution as one matmul over width tiles.

    Each patch row holds kh input rows x (tile + kw - 1) input columns and yields `tile` adjacent
    output columns through a banded weight matrix built from the kernel. tile=1 is plain im2col,
    whose patch matrix (kh*kw*C per output pixel: 235 KB per image for conv1) makes the layer
    memory-bound; tile=4 cuts the patch bytes 3x for 1.6x the multiply-adds, and measures ~2x
    faster for conv1 forward and backward on CPU (benchmarks/NOTES-cpu-speed.md).
    """
    kh, kw, c, o = kernel.shape
    b, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    span, n_tiles = tile + kw - 1, wo // tile
    # band[u, v, j] = 1 where input column u of a tile feeds output column v through kernel column j.
    band = (np.arange(span)[:, None, None] - np.arange(tile)[None, :, None] == np.arange(kw)).astype(np.float32)
    weights = jnp.einsum("uvj,ijco->iucvo", band, kernel).reshape(kh * span * c, tile * o)
    rows = jnp.stack([x[:, i:i + ho] for i in range(kh)], axis=2)  # (B, ho, kh, W, C)
    tiles = jnp.stack([rows[:, :, :, t * tile:t * tile + span] for t in range(n_tiles)], axis=2)
    y = tiles.reshape(b * ho * n_tiles, kh * span * c) @ weights  # (B*ho*n_tiles, tile*O)
    return y.reshape(b, ho, wo, o)


def max_pool_2x2(x, impl="matmul"):
    """2x2 max pooling with stride 2 (PyTorch's MaxPool2d(2, 2)); H and W must be even."""
    if impl == "xla":
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    # Four strided slices and elementwise maxima: their gradient is a few selects, 7x faster on
    # CPU than reduce_window's select_and_scatter or a reshape + max over (2, 2) windows.
    top = jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2])
    bottom = jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2])
    return jnp.maximum(top, bottom)
