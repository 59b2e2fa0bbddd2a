"""Data parallelism over all devices of a run, in one process or several (`jax.sharding`: GPUs, TPU
cores, or CPU devices forced with XLA_FLAGS=--xla_force_host_platform_device_count=N).

A single run shards each minibatch along its batch axis over a 1-D mesh of its devices and
replicates the parameters, optimizer state and dataset; XLA's SPMD partitioner then splits the
computation and all-reduces the gradients, so the result equals single-device training up to float
summation order. Vmapped sweep members (`config.vmap`) are instead spread over the local devices
along the member axis. Nothing here changes the model code.

Multi-host: a run launched as several processes (`srun` with several tasks, or the explicit
coordinator flags of `experiments/train.py`) calls `initialize` first; the mesh then spans every
process's devices (`jax.devices()`). Each process loads the whole dataset, as one process does, and
contributes its copy to the replicated global arrays (`jax.make_array_from_process_local_data`):
the compiled epoch is then the very program of one process with as many devices. It draws the
same global permutation on every device and gathers each device's slice of every minibatch from
that device's own copy of the split, so no example crosses processes; only gradients are
all-reduced (gloo on CPU). The processes keep in step: checkpoints go through Orbax's multi-host
path (every process saves and restores, process 0 writes the shared files), every other file of
the workdir is written by process 0 (`is_primary`), and decisions taken on one process (the
workdir lock, a signal) are agreed by all (`agree`, `any_process`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "devices"
# Set by `srun` in each task of a job step: more than one means a multi-process run.
SLURM_STEP_TASKS = "SLURM_STEP_NUM_TASKS"


def initialize(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """`jax.distributed.initialize` when this process is one of several: explicit arguments, or
    the environment of a several-task `srun` step (which JAX reads itself). A single process
    (arguments None and no such step) initializes nothing. Call it before anything touches a
    device. CPU devices exchange gradients through gloo."""
    explicit = num_processes is not None
    if not explicit and int(os.environ.get(SLURM_STEP_TASKS, "1")) <= 1:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX's preemption service would catch SIGTERM itself, hiding it from `interrupts`: the stop
    # at an epoch boundary, saved, that the processes agree on (`any_process`).
    jax.config.update("jax_enable_preemption_service", False)
    if explicit:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    else:
        jax.distributed.initialize()
    logging.info(
        "Process %d of %d; %d devices in all.",
        jax.process_index(),
        jax.process_count(),
        jax.device_count(),
    )


def is_primary() -> bool:
    """Whether this process writes the workdir's files (process 0; the only one of a plain run)."""
    return jax.process_index() == 0


def multi_process() -> bool:
    return jax.process_count() > 1


def agree(value: bool) -> bool:
    """Process 0's `value`, on every process (a plain run's own)."""
    if not multi_process():
        return value
    return bool(multihost_utils.broadcast_one_to_all(np.bool_(value)))


def any_process(value: bool) -> bool:
    """Whether `value` is true on any process (a plain run's own)."""
    if not multi_process():
        return value
    return bool(np.any(multihost_utils.process_allgather(np.bool_(value))))


def sync(name: str) -> None:
    """A barrier across processes (nothing in a plain run): what process 0 wrote before it is
    there for every process after it."""
    if multi_process():
        multihost_utils.sync_global_devices(name)


def _mesh(config, devices: list[jax.Device]) -> Mesh | None:
    if not config.train.data_parallel or len(devices) == 1:
        return None
    return Mesh(np.array(devices), (AXIS,))


def global_mesh(config) -> Mesh | None:
    """A 1-D mesh of every process's devices, or None when there is one device or it is switched
    off (`config.train.data_parallel`)."""
    return _mesh(config, jax.devices())


def local_mesh(config) -> Mesh | None:
    """A 1-D mesh of this process's devices, or None (one device, or switched off)."""
    return _mesh(config, jax.local_devices())


def check_divisible(size: int, mesh: Mesh | None, what: str) -> None:
    if mesh is not None and size % mesh.size:
        devices = "local devices" if not multi_process() else "devices of all processes"
        raise ValueError(
            f"{what}={size} is not divisible by the {mesh.size} {devices}: change it, or set "
            "config.train.data_parallel=False to train on one device."
        )


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """The same values on every device of the mesh (parameters, optimizer state, the dataset)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())
    if not multi_process():
        return jax.device_put(tree, sharding)
    # Each process holds the same values (loaded or computed alike): its copy is its part of the
    # global array. (device_put would first all-gather them to check that they are equal.)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), tree)


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
