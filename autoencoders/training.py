"""Training: one jit-compiled function per epoch, evaluation, Orbax checkpoints, metrics.

`train_and_evaluate(config, workdir)` is the whole run. The epoch function shuffles on device and
`lax.scan`s over minibatches, so Python runs once per epoch, not once per step. Randomness comes
from one root key (`config.seed`): epoch e uses fold_in(root, e), so a run resumed from the
checkpoint of epoch e replays exactly the epochs an uninterrupted run would have.

`config.vmap` (seeds, float hyper-parameters) trains several members as one vmapped program, each
writing what its own run would write into workdir/members/<name>/ (see "Vectorised members").
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: runs are not locked (see workdir_lock)
    fcntl = None

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from autoencoders import data, likelihoods, metrics, models, networks, optim, parallel, sweeps

Array = jax.Array

# Salts for fold_in: independent random streams from the one root key.
_INIT, _TRAIN, _EVAL = 0, 1, 2


def check_config(config: ml_collections.ConfigDict) -> data.DataSpec:
    """Every config check that can run before data is loaded or anything compiles."""
    for member in sweeps.vmap_members(config.get("vmap")):
        check_config(member_config(config, member))  # each member is a valid run on its own
    for field in ("batch_size", "num_epochs", "eval_every", "eval_batch_size"):
        if config.train[field] <= 0:
            raise ValueError(f"config.train.{field}={config.train[field]}: must be > 0.")
    if config.train.epoch_loop not in EPOCH_LOOPS:
        raise ValueError(
            f"config.train.epoch_loop={config.train.epoch_loop!r}: must be one of "
            f"{', '.join(EPOCH_LOOPS)}."
        )
    for field in ("every_epochs", "max_to_keep"):
        if config.checkpoint[field] <= 0:
            raise ValueError(f"config.checkpoint.{field}={config.checkpoint[field]}: must be > 0.")
    family = models.family(config.model.family)
    family.check_config(config)
    optim.check_config(config.optimizer)
    spec = data.describe(config.data)
    likelihoods.check_compatible(config.likelihood, spec.kind, spec.num_levels)
    networks.check_config(config.network, spec.shape)
    outputs = likelihoods.make(config.likelihood, spec.num_levels).num_params
    networks.check_tied(config.network, config.model.family, family.encoder_outputs_code, outputs)
    return spec


# ---------------------------------------------------------------------------------------------
# Compiled functions
# ---------------------------------------------------------------------------------------------


def make_train_epoch(
    model: models.Model,
    config,
    steps_per_epoch: int,
    labelled: np.ndarray | None = None,
    mesh: parallel.Mesh | None = None,
) -> Callable:
    """(state, images, labels, key) -> (state, epoch-mean metrics), compiled, donating the state.

    Normally one jit-compiled `lax.scan` over the epoch's minibatches. With
    `config.train.epoch_loop='steps'` (what 'auto' picks for convolutional networks on CPU, where
    XLA runs convolutions inside a loop body ~40× slower than outside one) it is a Python loop
    over one compiled step instead: the same steps with the same keys, a dispatch per step.
    """
    if epoch_loop(config) == "scan":
        epoch_fn = train_epoch_fn(model, config, steps_per_epoch, labelled, mesh)
        return jax.jit(epoch_fn, donate_argnums=0)
    shuffle, step = _epoch_parts(model, config, steps_per_epoch, labelled, mesh)
    shuffle = jax.jit(shuffle)
    step = jax.jit(step, donate_argnums=0)

    def train_epoch(state, images, labels, key):
        order, step_key = shuffle(images, key)
        step_metrics = []
        for i in range(steps_per_epoch):
            state, metrics_i = step(state, (order[i], i), images, labels, step_key)
            step_metrics.append(metrics_i)
        return state, jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *step_metrics)

    return train_epoch


EPOCH_LOOPS = ("auto", "scan", "steps")


def epoch_loop(config) -> str:
    """'scan' or 'steps' for `config.train.epoch_loop` (see `make_train_epoch`)."""
    if config.train.epoch_loop != "auto":
        return config.train.epoch_loop
    slow_loop_convs = config.network.kind == "conv" and jax.default_backend() == "cpu"
    return "steps" if slow_loop_convs else "scan"


def train_epoch_fn(
    model: models.Model,
    config,
    steps_per_epoch: int,
    labelled: np.ndarray | None = None,
    mesh: parallel.Mesh | None = None,
) -> Callable:
    """(state, images, labels, key) -> (state, epoch-mean metrics), not yet jitted.

    Semi-supervised families (`model.labelled_batch_size > 0`) also pass `labelled`, the indices
    of the training examples whose labels are kept (`data.labelled_subset`): each step then adds
    `labelled_batch_size` of them, drawn afresh, as batch['x_labelled'] and batch['y_labelled'],
    and their share of the training set as batch['labelled_fraction'] (a scalar), because a
    subset of 100 would otherwise hardly ever appear in a minibatch.

    With a `mesh`, each minibatch is split over its devices (data parallelism, `parallel.py`).
    """
    shuffle, step = _epoch_parts(model, config, steps_per_epoch, labelled, mesh)

    def train_epoch(state, images, labels, key):
        order, step_key = shuffle(images, key)
        state, step_metrics = jax.lax.scan(
            lambda state, inputs: step(state, inputs, images, labels, step_key),
            state,
            (order, jnp.arange(steps_per_epoch)),
        )
        # Mean over all minibatches of the epoch (equal sizes), not the last one.
        return state, jax.tree.map(jnp.mean, step_metrics)

    return train_epoch


def _epoch_parts(model, config, steps_per_epoch: int, labelled, mesh) -> tuple[Callable, Callable]:
    """shuffle(images, key) -> (order (steps, batch), step_key), and
    step(state, (indices, i), images, labels, step_key) -> (state, metrics): one epoch's pieces."""
    batch_size = config.train.batch_size
    data_cfg, num_levels = config.data, model.spec.num_levels
    if model.labelled_batch_size and labelled is None:
        raise ValueError("make_train_epoch: this model needs `labelled` (data.labelled_subset).")

    def labelled_minibatch(images, labels, key):
        pick_key, data_key = jax.random.split(key)
        picks = jax.random.choice(
            pick_key, len(labelled), (model.labelled_batch_size,), replace=False
        )
        idx = jnp.asarray(labelled)[picks]
        x = data.preprocess(
            images[idx], data_key, num_levels, data_cfg.binarization, data_cfg.dequantize
        )
        fraction = jnp.float32(len(labelled) / images.shape[0])
        return {"x_labelled": x, "y_labelled": labels[idx], "labelled_fraction": fraction}

    def shuffle(images, key):
        perm_key, step_key = jax.random.split(key)
        used = steps_per_epoch * batch_size  # the remainder is dropped; shuffling varies it
        order = jax.random.permutation(perm_key, images.shape[0])[:used]
        return order.reshape(steps_per_epoch, batch_size), step_key

    def step(state, inputs, images, labels, step_key):
        idx, i = inputs
        data_key, model_key = jax.random.split(jax.random.fold_in(step_key, i))
        x = data.preprocess(
            images[idx], data_key, num_levels, data_cfg.binarization, data_cfg.dequantize
        )
        batch = parallel.shard_batch({"x": x, "y": labels[idx]}, mesh)
        if model.labelled_batch_size:
            batch.update(labelled_minibatch(images, labels, jax.random.fold_in(data_key, 1)))
        return model.train_step(state, batch, model_key)

    return shuffle, step


def make_evaluate(model: models.Model, config, mesh: parallel.Mesh | None = None) -> Callable:
    """jit(params, images, labels, key) -> per-example means of `model.eval_terms` over a split."""
    return jax.jit(evaluate_fn(model, config, mesh))


def evaluate_fn(model: models.Model, config, mesh: parallel.Mesh | None = None) -> Callable:
    """(params, images, labels, key) -> per-example means of `model.eval_terms`, not yet jitted.

    The split is padded to whole batches and padded rows are masked out, so every example counts
    once. The noise key is fixed by the caller, so the result is the same at every evaluation.
    """
    batch_size = config.train.eval_batch_size
    data_cfg, num_levels = config.data, model.spec.num_levels

    def evaluate(params, images, labels, key):
        n = images.shape[0]
        num_batches = -(-n // batch_size)
        pad = num_batches * batch_size - n
        images = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))
        labels = jnp.pad(labels, (0, pad), constant_values=-1)
        mask = (jnp.arange(num_batches * batch_size) < n).astype(jnp.float32)

        def body(totals, i):
            start = i * batch_size
            data_key, model_key = jax.random.split(jax.random.fold_in(key, i))
            x_raw = jax.lax.dynamic_slice_in_dim(images, start, batch_size)
            x = data.preprocess(
                x_raw, data_key, num_levels, data_cfg.binarization, data_cfg.dequantize
            )
            batch = {"x": x, "y": jax.lax.dynamic_slice_in_dim(labels, start, batch_size)}
            terms = model.eval_terms(params, parallel.shard_batch(batch, mesh), model_key)
            weight = jax.lax.dynamic_slice_in_dim(mask, start, batch_size)
            sums = {k: jnp.sum(v * weight) for k, v in terms.items()}
            return jax.tree.map(jnp.add, totals, sums), None

        shapes = jax.eval_shape(
            lambda: model.eval_terms(
                params,
                {"x": jnp.zeros((batch_size, *images.shape[1:])), "y": labels[:batch_size]},
                key,
            )
        )
        zeros = {k: jnp.zeros(()) for k in shapes}
        totals, _ = jax.lax.scan(body, zeros, jnp.arange(num_batches))
        return {k: v / n for k, v in totals.items()}

    return evaluate


# ---------------------------------------------------------------------------------------------
# Workdir: config.json, checkpoints
# ---------------------------------------------------------------------------------------------


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return out


def write_or_check_config(config, workdir: str, allow_config_change: bool) -> None:
    """Writes workdir/config.json; on resume, refuses a different config unless allowed."""
    path = os.path.join(workdir, "config.json")
    current = json.loads(config.to_json_best_effort())
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        old, new = _flatten(saved), _flatten(current)
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if diff and not allow_config_change:
            lines = "\n".join(f"  {k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise ValueError(
                f"{workdir} holds a run with a different config:\n{lines}\nUse a new --workdir, "
                "or pass --allow_config_change to resume this run with the new config."
            )
        if diff:
            logging.warning("Resuming with a changed config: %s", ", ".join(diff))
            os.replace(path, os.path.join(workdir, f"config.{int(time.time())}.json"))
        else:
            return
    with open(path, "w") as f:
        json.dump(current, f, indent=2)


def checkpoint_manager(workdir: str, config) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.checkpoint.max_to_keep,
        cleanup_tmp_directories=True,  # drops a save cut short by a kill
    )
    return ocp.CheckpointManager(
        os.path.join(os.path.abspath(workdir), "checkpoints"), options=options
    )


def restore_latest(
    manager: ocp.CheckpointManager, state: optim.TrainState, epoch: int | None = None
):
    """(state, epoch) from the latest checkpoint (or `epoch`'s), or (state, 0) if there is none."""
    epoch = manager.latest_step() if epoch is None else epoch or None
    if epoch is None:
        return state, 0
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    try:
        restored = manager.restore(epoch, args=ocp.args.StandardRestore(abstract))
    except ValueError as e:
        raise ValueError(
            f"The checkpoint of epoch {epoch} in {manager.directory} does not fit this config's "
            "model or optimizer (changed with --allow_config_change?). Use a new --workdir."
        ) from e
    return restored, int(epoch)


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The resolved config a run wrote to workdir/config.json."""
    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def restore_params(workdir: str, epoch: int | None = None):
    """(config, model, params, epoch) of a run's checkpoint (the latest if `epoch` is None).

    For evaluation: the optimizer state is restored only to match the checkpoint's structure.
    """
    config = load_config(workdir)
    model = models.make(config, data.describe(config.data))
    tx = optim.make(config.optimizer, steps_per_epoch=1, num_epochs=config.train.num_epochs)
    example = {
        "x": jnp.zeros((1, *model.spec.shape)),
        "y": jnp.zeros((1,), jnp.int32),
    }
    state = model.init_state(jax.random.key(0), example, tx)
    manager = checkpoint_manager(workdir, config)
    try:
        epoch = manager.latest_step() if epoch is None else epoch
        if epoch is None:
            raise FileNotFoundError(f"No checkpoint in {manager.directory}.")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = manager.restore(epoch, args=ocp.args.StandardRestore(abstract))
    finally:
        manager.close()
    return config, model, state.params, int(epoch)


# ---------------------------------------------------------------------------------------------
# Vectorised members: config.vmap trains several settings as one vmapped, compiled program
# ---------------------------------------------------------------------------------------------
#
# config.vmap = {'seed': (0, 1, 2, 3), 'beta': (0.5, 1.0)} trains every combination
# (`sweeps.vmap_members`) together: one jit-compiled epoch, vmapped over (state, key,
# hyper-parameters). A key is `seed`, or a float field named by its last component (`beta` is
# model.beta, `learning_rate` optimizer.learning_rate), or by its path with `__` for `.`. A seed
# gives a member its own root key; a float field reaches the model and the optimizer as a traced
# value: inside the traced function they are rebuilt (at trace time, once) from a copy of the config
# that holds the tracer. Each member writes what a separate run with its settings writes into
# <workdir>/members/<name>/ (config.json without vmap, metrics.jsonl, checkpoints), and equals that
# run up to float round-off. Shape-changing settings (latent size, widths) and fields used as Python
# numbers (e.g. a weight decay of 0 that drops a transform) stay outer sweep axes.


def vmap_fields(config) -> dict[str, str]:
    """config.vmap's keys -> the config fields they set; errors for anything not vmappable."""
    flat = {k: v for k, v in _flatten(config.to_dict()).items() if not k.startswith("vmap.")}
    fields = {}
    for key in (config.get("vmap") or {}).keys():  # noqa: SIM118 - a ConfigDict
        if key == "seed":
            fields[key] = key
            continue
        if "__" in key:
            matches = [key.replace("__", ".")] if key.replace("__", ".") in flat else []
        else:
            matches = [f for f in flat if f.rsplit(".", 1)[-1] == key]
        if len(matches) != 1:
            raise ValueError(
                f"config.vmap key {key!r} matches {matches or 'no field'}: name a float field by "
                "its last component (beta, learning_rate) or its path with '__' (model__beta)."
            )
        if not isinstance(flat[matches[0]], float):
            raise ValueError(
                f"config.vmap key {key!r}: config.{matches[0]} is not a float. Only seeds and "
                "float hyper-parameters are vmapped; make other settings outer sweep axes."
            )
        fields[key] = matches[0]
    return fields


def _set_field(config, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = config
    for p in parents:
        node = node[p]
    node[leaf] = value


def member_config(config, member: dict[str, Any]) -> ml_collections.ConfigDict:
    """One vmapped member's config: exactly what a separate run with its settings would use."""
    fields = vmap_fields(config)
    member_cfg = copy.deepcopy(config)
    with member_cfg.unlocked():
        member_cfg.vmap = ml_collections.ConfigDict()
        for key, value in member.items():
            _set_field(member_cfg, fields[key], int(value) if key == "seed" else float(value))
    return member_cfg


def _traced_config(config, fields: dict[str, str], hparams: dict[str, Array]):
    """A copy of `config` holding traced hyper-parameters; built inside jit/vmap only."""
    traced = copy.deepcopy(config)
    with traced.unlocked(), traced.ignore_type():
        for key, value in hparams.items():
            _set_field(traced, fields[key], value)
    return traced


def _unstack(tree: Any, n: int) -> list[Any]:
    return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(n)]


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


class QuietLibraries(logging.Filter):
    """Drops INFO chatter from Orbax and TFDS (dozens of lines per checkpoint); keeps warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = any(lib in record.pathname for lib in ("orbax", "tensorflow_datasets"))
        return record.levelno >= logging.WARNING or not noisy


def _format(values: dict[str, float], keys: list[str]) -> str:
    return "  ".join(f"{k} {values[k]:.3f}" for k in keys if k in values)


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, *, allow_config_change: bool = False
) -> dict[str, float]:
    """Trains `config` in `workdir`, resuming from its latest checkpoint; returns final metrics.

    Metrics are per-example means (nats per image for likelihood terms); the final dict holds
    `train/<name>` and `<eval split>/<name>` entries (`<member>/...` for vmapped members).
    """
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    with workdir_lock(workdir):
        members = _write_configs(config, workdir, allow_config_change)
        with _file_log(workdir):
            return _run_vmapped(config, workdir, members) if members else _run(config, workdir)


def _write_configs(config, workdir: str, allow_config_change: bool) -> list[dict[str, Any]]:
    """config.json of the run and of each vmapped member (`write_or_check_config`); the members."""
    write_or_check_config(config, workdir, allow_config_change)
    members = sweeps.vmap_members(config.get("vmap"))
    for member in members:
        member_dir = sweeps.member_workdir(workdir, member)
        os.makedirs(member_dir, exist_ok=True)
        write_or_check_config(member_config(config, member), member_dir, allow_config_change)
    return members


@contextlib.contextmanager
def _file_log(workdir: str) -> Iterator[None]:
    """The run's log lines also go to workdir/log.txt (library chatter filtered out)."""
    handler = logging.FileHandler(os.path.join(workdir, "log.txt"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(QuietLibraries())
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


class WorkdirInUse(RuntimeError):
    """Another training run holds the workdir's lock."""


LOCK_FILE = "train.lock"


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
    """An exclusive lock on `workdir` while a run trains in it (`LOCK_FILE`, flock).

    A second run started on the same workdir (a re-submitted job, a typo in a sweep) stops at once
    with `WorkdirInUse` instead of interleaving its checkpoints and metrics with the first's. The
    operating system drops the lock when the holder exits, so a crash or kill leaves nothing to
    clean up and the next run resumes. Without flock (Windows, some cluster file systems) runs
    are not locked, and a warning says so.
    """
    with open(os.path.join(workdir, LOCK_FILE), "a+") as f:
        try:
            _claim(f, workdir)
        except OSError as e:
            logging.warning("Training in %s without a workdir lock: %s", workdir, e)
        yield


def _claim(lock_file, workdir: str) -> None:
    """flock `lock_file` and write this process into it as the holder; `WorkdirInUse` when
    another process holds it, OSError where flock is unavailable."""
    if fcntl is None:
        raise OSError("fcntl is not available on this platform")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip() or "holder unknown"
        raise WorkdirInUse(
            f"workdir {workdir!r} is in use by another training run ({holder}); wait for it "
            "to finish, or choose another --workdir."
        ) from None
    lock_file.seek(0)
    lock_file.truncate()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lock_file.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
    lock_file.flush()


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What every run builds before training: data on device, the model, sizes."""

    model: models.Model
    train: data.Split
    eval_split: data.Split
    steps_per_epoch: int
    example: dict[str, Array]
    labelled: np.ndarray | None
    mesh: parallel.Mesh | None  # data parallelism over local devices (None: one device)


def _setup(config, data_parallel: bool = True) -> _Setup:
    mesh = parallel.local_mesh(config) if data_parallel else None
    parallel.check_divisible(config.train.batch_size, mesh, "config.train.batch_size")
    parallel.check_divisible(config.train.eval_batch_size, mesh, "config.train.eval_batch_size")
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    train = dataset.train
    batch_size = config.train.batch_size
    if batch_size > train.size:
        raise ValueError(
            f"config.train.batch_size={batch_size} exceeds the {train.size} training examples."
        )
    labelled = None
    if model.labelled_batch_size:
        labelled = data.labelled_subset(
            np.asarray(train.labels),
            model.num_labelled,
            dataset.spec.num_classes,
            config.data.split_seed,
        )
    eval_split = dataset.eval_split(config.data.eval_split)
    return _Setup(
        model=model,
        train=_replicate_split(train, mesh),
        eval_split=_replicate_split(eval_split, mesh),
        steps_per_epoch=train.size // batch_size,
        example={
            "x": jnp.zeros((batch_size, *dataset.spec.shape)),
            "y": jnp.zeros((batch_size,), jnp.int32),
        },
        labelled=labelled,
        mesh=mesh,
    )


def _replicate_split(split: data.Split, mesh: parallel.Mesh | None) -> data.Split:
    images, labels = parallel.replicate((split.images, split.labels), mesh)
    return dataclasses.replace(split, images=images, labels=labels)


@dataclasses.dataclass
class _Output:
    """Where one trained model's results go: the run's workdir, or a vmapped member's."""

    name: str  # the member's name; '' for a plain run
    manager: ocp.CheckpointManager
    log: metrics.MetricsLog

    @classmethod
    def open(cls, workdir: str, config, name: str = "") -> _Output:
        return cls(name, checkpoint_manager(workdir, config), metrics.MetricsLog(workdir))

    def close(self) -> None:
        try:
            self.manager.wait_until_finished()
            self.manager.close()
        finally:
            self.log.close()


def _run(config, workdir: str) -> dict[str, float]:
    setup = _setup(config)
    root = jax.random.key(config.seed)
    tx = optim.make(config.optimizer, setup.steps_per_epoch, config.train.num_epochs)
    state = setup.model.init_state(jax.random.fold_in(root, _INIT), setup.example, tx)
    state = parallel.replicate(state, setup.mesh)  # restored checkpoints land replicated too
    output = _Output.open(workdir, config)
    try:
        state, start_epoch = restore_latest(output.manager, state)
        train_epoch = make_train_epoch(
            setup.model, config, setup.steps_per_epoch, setup.labelled, setup.mesh
        )
        evaluate = make_evaluate(setup.model, config, setup.mesh)
        train_key, eval_key = jax.random.fold_in(root, _TRAIN), jax.random.fold_in(root, _EVAL)
        images, labels = setup.train.images, setup.train.labels
        return _loop(
            config,
            setup,
            state,
            start_epoch,
            [output],
            train_epoch=lambda state, epoch: train_epoch(
                state, images, labels, jax.random.fold_in(train_key, epoch)
            ),
            evaluate=lambda params: evaluate(
                params, setup.eval_split.images, setup.eval_split.labels, eval_key
            ),
            unstack=lambda tree: [tree],
        )
    finally:
        output.close()


def _run_vmapped(config, workdir: str, members: list[dict[str, Any]]) -> dict[str, float]:
    setup = _setup(config, data_parallel=False)
    # Members, not minibatches, are spread over the local devices (when they divide evenly).
    mesh = parallel.local_mesh(config)
    mesh = mesh if mesh is not None and len(members) % mesh.size == 0 else None
    num_epochs, steps_per_epoch, n = config.train.num_epochs, setup.steps_per_epoch, len(members)
    fields = vmap_fields(config)
    hparams = {
        k: jnp.asarray([float(m[k]) for m in members], jnp.float32) for k in fields if k != "seed"
    }
    roots = jnp.stack([jax.random.key(int(m.get("seed", config.seed))) for m in members])
    tx = optim.make(config.optimizer, steps_per_epoch, num_epochs)  # static part of the state

    def build(hp):
        traced = _traced_config(config, fields, hp)
        return (
            traced,
            models.make(traced, setup.model.spec),
            optim.build(traced.optimizer, steps_per_epoch, num_epochs),
        )

    def init(root, hp):
        _, model, member_tx = build(hp)
        state = model.init_state(jax.random.fold_in(root, _INIT), setup.example, member_tx)
        return state.replace(tx=tx)

    def train_epoch(state, images, labels, key, hp):
        traced, model, member_tx = build(hp)
        epoch_fn = train_epoch_fn(model, traced, steps_per_epoch, setup.labelled)
        state, epoch_metrics = epoch_fn(state.replace(tx=member_tx), images, labels, key)
        return state.replace(tx=tx), epoch_metrics

    def evaluate(params, images, labels, key, hp):
        traced, model, _ = build(hp)
        return evaluate_fn(model, traced)(params, images, labels, key)

    members_axis = (0, None, None, 0, 0)  # state/params, images, labels, key, hyper-parameters
    train_all = jax.jit(jax.vmap(train_epoch, in_axes=members_axis), donate_argnums=0)
    evaluate_all = jax.jit(jax.vmap(evaluate, in_axes=members_axis))
    outputs = []
    try:
        state = jax.jit(jax.vmap(init))(roots, hparams)
        for member in members:
            member_dir = sweeps.member_workdir(workdir, member)
            outputs.append(_Output.open(member_dir, config, sweeps.run_name(member)))
        # Members resume together, from the last epoch all of them saved.
        saved = set.intersection(*(set(o.manager.all_steps()) for o in outputs))
        start_epoch = max(saved, default=0)
        if start_epoch:
            state = _stack(
                [
                    restore_latest(o.manager, member_state, start_epoch)[0]
                    for o, member_state in zip(outputs, _unstack(state, n), strict=True)
                ]
            )
        state, hparams = parallel.split_leading_axis((state, hparams), mesh)
        train_keys = jax.vmap(lambda r: jax.random.fold_in(r, _TRAIN))(roots)
        eval_keys = jax.vmap(lambda r: jax.random.fold_in(r, _EVAL))(roots)
        train_keys, eval_keys = parallel.split_leading_axis((train_keys, eval_keys), mesh)
        train_split = _replicate_split(setup.train, mesh)
        eval_split = _replicate_split(setup.eval_split, mesh)
        return _loop(
            config,
            setup,
            state,
            start_epoch,
            outputs,
            train_epoch=lambda state, epoch: train_all(
                state,
                train_split.images,
                train_split.labels,
                jax.vmap(lambda k: jax.random.fold_in(k, epoch))(train_keys),
                hparams,
            ),
            evaluate=lambda params: evaluate_all(
                params, eval_split.images, eval_split.labels, eval_keys, hparams
            ),
            unstack=lambda tree: _unstack(tree, n),
        )
    except jax.errors.ConcretizationTypeError as e:
        # Raised while tracing: some code reads a vmapped field as a Python number.
        raise ValueError(
            f"config.vmap={dict(config.vmap)}: a vmapped field is used as a Python number (in an "
            "`if` or a shape), so it cannot be a traced value; make it an outer sweep axis."
        ) from e
    finally:
        for o in outputs:
            o.close()


def _loop(
    config,
    setup: _Setup,
    state: optim.TrainState,
    start_epoch: int,
    outputs: list[_Output],
    *,
    train_epoch: Callable,
    evaluate: Callable,
    unstack: Callable[[Any], list[Any]],
) -> dict[str, float]:
    """The epochs of a run, or of vmapped members at once (`unstack` splits the member axis)."""
    model, num_epochs, split = setup.model, config.train.num_epochs, config.data.eval_split
    for o, member_state in zip(outputs, unstack(state), strict=True):
        o.log.event(
            "start",
            resumed_from_epoch=start_epoch,
            units={"recon": model.units.description, "sq_err": "squared error per image, summed"},
            num_params=int(sum(p.size for p in jax.tree.leaves(member_state.params))),
        )
    if start_epoch:
        logging.info("Resumed from the checkpoint of epoch %d.", start_epoch)
    last_saved = start_epoch
    examples = setup.steps_per_epoch * config.train.batch_size
    final: dict[str, float] = {}
    for epoch in range(start_epoch + 1, num_epochs + 1):
        start = time.perf_counter()
        state, train_metrics = train_epoch(state, epoch)
        per_member = [
            {k: float(v) for k, v in m.items()} for m in unstack(jax.device_get(train_metrics))
        ]
        seconds = time.perf_counter() - start
        for o, values in zip(outputs, per_member, strict=True):
            bad = [k for k, v in values.items() if not np.isfinite(v)]
            if bad:
                raise FloatingPointError(
                    f"Non-finite training metrics at epoch {epoch}"
                    f"{f' of member {o.name}' if o.name else ''}: "
                    f"{', '.join(f'{k}={values[k]}' for k in bad)}. This epoch's parameters "
                    f"were discarded; the last good checkpoint (epoch {last_saved}) is kept in "
                    f"{o.manager.directory}. Try a smaller config.optimizer.learning_rate or set "
                    "config.optimizer.grad_clip_norm."
                )
        lr = optim.current_learning_rate(state.opt_state)
        lrs = unstack(jax.device_get(lr)) if lr is not None else [None] * len(outputs)
        steps = unstack(jax.device_get(state.step))
        evaluated = epoch % config.train.eval_every == 0 or epoch == num_epochs
        eval_members = unstack(jax.device_get(evaluate(state.params))) if evaluated else None
        saving = epoch % config.checkpoint.every_epochs == 0 or epoch == num_epochs
        member_states = unstack(state) if saving else None
        for i, (o, values) in enumerate(zip(outputs, per_member, strict=True)):
            prefix = f"{o.name}/" if o.name else ""
            values["examples_per_sec"] = examples / seconds
            if lrs[i] is not None:
                values["learning_rate"] = float(lrs[i])
            step = int(steps[i])
            o.log.write(step=step, epoch=epoch, split="train", values=values)
            final.update({f"{prefix}train/{k}": v for k, v in values.items()})
            line = f"epoch {epoch}/{num_epochs}{f' [{o.name}]' if o.name else ''}"
            line += f"  train: {_format(values, ['loss'])}"
            if eval_members is not None:
                eval_metrics = {k: float(v) for k, v in eval_members[i].items()}
                o.log.write(step=step, epoch=epoch, split=split, values=eval_metrics)
                final.update({f"{prefix}{split}/{k}": v for k, v in eval_metrics.items()})
                # A family may name its own headline term (e.g. IWAE's `iw_bound_name`).
                shown = [
                    getattr(model, "iw_bound_name", ""),
                    model.bound_name,
                    model.recon_name,
                    "kl",
                ]
                line += f"  {split}: {_format(eval_metrics, shown)}"
            if member_states is not None:
                o.manager.save(epoch, args=ocp.args.StandardSave(member_states[i]))
            logging.info("%s  %.0f examples/s  %.1f s", line, values["examples_per_sec"], seconds)
        if member_states is not None:
            last_saved = epoch
    return final
