"""Pick the JAX device from --device, with a one-line error when it is not there."""
import jax

from experiment.errors import UserError

DEVICES = ("auto", "cpu", "gpu", "tpu")


def pick_device(name):
    if name == "auto":
        return jax.devices()[0]
    try:
        return jax.devices(name)[0]
    except RuntimeError:
        raise UserError(f"--device {name}: JAX sees no {name} (backends: {jax.default_backend()})") from None


def describe(device):
    return f"{device.platform}:{device.device_kind}"
