"""python -m benchmarks.runners.ops: per-op CPU timings behind flax_impl.ops' choices (batch 64, ms).

Times forward+backward of each conv and pooling formulation at LeNet's shapes, so the notes in
benchmarks/NOTES-cpu-speed.md can be re-measured. Median of 3 runs of 20 calls after warm-up.
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from flax_impl.ops import conv_valid, max_pool_2x2


def bench_ms(f, *args, n=20):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            r = f(*args)
        jax.block_until_ready(r)
        times.append((time.perf_counter() - t0) / n)
    return 1e3 * float(np.median(times))


def pool_reshape(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks.runners.ops", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    b = p.parse_args(argv).batch
    rng = np.random.default_rng(0)
    arr = lambda *s: jnp.asarray(rng.normal(size=s).astype(np.float32))  # noqa: E731
    x, k1, k2, h1 = arr(b, 32, 32, 3), arr(5, 5, 3, 6), arr(5, 5, 6, 16), arr(b, 14, 14, 6)
    a1 = jnp.maximum(arr(b, 28, 28, 6), 0)
    rows = []
    for impl in ("matmul", "xla"):
        conv1 = jax.jit(jax.grad(lambda k, x: conv_valid(x, k, 0.0, impl).sum()))  # input needs no grad
        conv2 = jax.jit(jax.grad(lambda k, h: conv_valid(h, k, 0.0, impl).sum(), argnums=(0, 1)))
        rows.append((f"conv1 fwd+weight grad [{impl}]", bench_ms(conv1, k1, x)))
        rows.append((f"conv2 fwd+weight+input grad [{impl}]", bench_ms(conv2, k2, h1)))
    for name, pool in (("strided slices (matmul impl)", lambda a: max_pool_2x2(a, "matmul")),
                       ("reduce_window (xla impl)", lambda a: max_pool_2x2(a, "xla")),
                       ("reshape + max", pool_reshape)):
        rows.append((f"pool1 fwd+bwd [{name}]", bench_ms(jax.jit(jax.grad(lambda a: (pool(a) * 1.3).sum())), a1)))
    for name, ms in rows:
        print(f"{name:48s} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
