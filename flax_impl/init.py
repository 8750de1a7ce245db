"""PyTorch's default initialisation, for Flax: kaiming_uniform(a=sqrt(5)) weights and
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases. For a=sqrt(5) the weight bound is also 1/sqrt(fan_in)."""
import jax
import jax.numpy as jnp


def torch_uniform(fan_in):
    bound = 1.0 / jnp.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init
