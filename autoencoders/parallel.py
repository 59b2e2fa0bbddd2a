"""Data parallelism over the local devices with `jax.sharding` (GPUs, TPU cores, or CPU devices
forced with XLA_FLAGS=--xla_force_host_platform_device_count=N).

A single run shards each minibatch along its batch axis over a 1-D mesh of all local devices and
replicates the parameters, optimizer state and dataset; XLA's SPMD partitioner then splits the
computation and all-reduces the gradients, so the result equals single-device training up to float
summation order. Vmapped sweep members (`config.vmap`) are instead spread over the devices along the
member axis. Nothing here changes the model code.

Multi-host (GPU/TPU clusters): call `jax.distributed.initialize()` at the top of
`experiments/train.py` on every host (coordinator address, process count and id come from the
scheduler's environment on Cloud TPU and SLURM); `jax.devices()` then spans all hosts. This module
uses local devices only; a global mesh would also need each host to feed its own shard of the data
(`jax.make_array_from_process_local_data`), which is the next step, not implemented here.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "devices"


def local_mesh(config) -> Mesh | None:
    """A 1-D mesh of the local devices, or None when there is one device or it is switched off."""
    devices = jax.local_devices()
    if not config.train.data_parallel or len(devices) == 1:
        return None
    return Mesh(np.array(devices), (AXIS,))


def check_divisible(size: int, mesh: Mesh | None, what: str) -> None:
    if mesh is not None and size % mesh.size:
        raise ValueError(
            f"{what}={size} is not divisible by the {mesh.size} local devices: change it, or set "
            "config.train.data_parallel=False to train on one device."
        )


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """The same values on every device of the mesh (parameters, optimizer state, the dataset)."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def split_leading_axis(tree: Any, mesh: Mesh | None) -> Any:
    """Places arrays split along their first axis (vmapped members) over the mesh."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def shard_batch(batch: dict[str, jax.Array], mesh: Mesh | None) -> dict[str, jax.Array]:
    """Inside jit: lay a minibatch out along its batch axis, one slice per device."""
    if mesh is None:
        return batch
    return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, PartitionSpec(AXIS)))
