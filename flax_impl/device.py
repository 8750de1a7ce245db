"""Pick the JAX devices from --device, with a one-line error when they are not there, and lay
them out as a mesh: one axis over lanes, one over the batch.

    lanes  several lanes (models x dropout rates x seeds) train in one vmapped program; the lane
           axis of the state is sharded over this mesh axis, so each device trains its own lanes
           (no per-device Python loop)
    data   one lane's batch is split over this axis (--data-parallel); gradients are all-reduced
"""
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from experiment.errors import UserError
from experiment.sources.download import resolves


def pick_devices(name):
    if name == "auto":
        return jax.devices()
    try:
        return jax.devices(name)
    except RuntimeError:
        raise UserError(f"--device {name}: JAX sees no {name} (backends: {jax.default_backend()})") from None


def pick_device(name):
    return pick_devices(name)[0]


def describe(device):
    return f"{device.platform}:{device.device_kind}"


def make_mesh(devices, n_lanes, data_parallel):
    """A (lanes, data) mesh. Lanes use the most devices that divide their number (5 lanes on 4
    devices: 1; 8 on 4: 4); --data-parallel puts every device on the batch axis instead."""
    n = len(devices)
    if data_parallel:
        shape = (1, n)
    else:
        shape = (max(d for d in range(1, n + 1) if n_lanes % d == 0), 1)
    grid = np.array(devices[: shape[0] * shape[1]]).reshape(shape)
    return Mesh(grid, ("lanes", "data"))


def sharding(mesh, *spec):
    return NamedSharding(mesh, P(*spec))


def put(x, sharding_):
    """Host array -> global array laid out as `sharding_`. Built from the host copy shard by
    shard, so it also works when the mesh spans several processes (each holds the same data)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding_, lambda index: x[index])


def fetch(tree):
    """Device arrays -> host NumPy arrays, gathering the shards other processes hold when the
    mesh spans several hosts."""
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)
    return jax.tree_util.tree_map(one, tree)


def start_distributed(coordinator, num_processes, process_id):
    """jax.distributed.initialize from --coordinator/--num-processes/--process-id (all or none)."""
    given = [coordinator, num_processes, process_id]
    if all(v is None for v in given):
        return
    if any(v is None for v in given):
        raise UserError("--coordinator, --num-processes and --process-id go together")
    if not 0 <= process_id < num_processes:
        raise UserError(f"--process-id {process_id} must be in [0, {num_processes})")
    host = coordinator.rpartition(":")[0].strip("[]")
    if not resolves(host):  # JAX would wait for minutes, then abort the process with a C++ stack trace
        raise UserError(f"--coordinator {coordinator}: cannot resolve {host}")
    if not jax.distributed.is_initialized():
        try:
            jax.distributed.initialize(coordinator, num_processes, process_id)
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"--coordinator {coordinator}: jax.distributed could not start ({first[:200]})") from None
