"""Training: one jit-compiled function per epoch, evaluation, Orbax checkpoints, metrics.

`train_and_evaluate(config, workdir)` is the whole run. The epoch function shuffles on device and
`lax.scan`s over minibatches, so Python runs once per epoch, not once per step. Randomness comes
from one root key (`config.seed`): epoch e uses fold_in(root, e), so a run resumed from the
checkpoint of epoch e replays exactly the epochs an uninterrupted run would have.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from autoencoders import data, likelihoods, metrics, models, networks, optim

Array = jax.Array

# Salts for fold_in: independent random streams from the one root key.
_INIT, _TRAIN, _EVAL = 0, 1, 2


def check_config(config: ml_collections.ConfigDict) -> data.DataSpec:
    """Every config check that can run before data is loaded or anything compiles."""
    for field in ("batch_size", "num_epochs", "eval_every", "eval_batch_size"):
        if config.train[field] <= 0:
            raise ValueError(f"config.train.{field}={config.train[field]}: must be > 0.")
    for field in ("every_epochs", "max_to_keep"):
        if config.checkpoint[field] <= 0:
            raise ValueError(f"config.checkpoint.{field}={config.checkpoint[field]}: must be > 0.")
    family = models.family(config.model.family)
    family.check_config(config)
    optim.check_config(config.optimizer)
    spec = data.describe(config.data)
    likelihoods.check_compatible(config.likelihood, spec.kind, spec.num_levels)
    networks.check_config(config.network, spec.shape)
    return spec


# ---------------------------------------------------------------------------------------------
# Compiled functions
# ---------------------------------------------------------------------------------------------


def make_train_epoch(
    model: models.Model, config, steps_per_epoch: int, labelled: np.ndarray | None = None
) -> Callable:
    """jit(state, images, labels, key) -> (state, epoch-mean metrics), donating the state.

    Semi-supervised families (`model.labelled_batch_size > 0`) also pass `labelled`, the indices
    of the training examples whose labels are kept (`data.labelled_subset`): each step then adds
    `labelled_batch_size` of them, drawn afresh, as batch['x_labelled'] and batch['y_labelled'],
    and their share of the training set as batch['labelled_fraction'] (a scalar), because a
    subset of 100 would otherwise hardly ever appear in a minibatch.
    """
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

    def train_epoch(state, images, labels, key):
        perm_key, step_key = jax.random.split(key)
        used = steps_per_epoch * batch_size  # the remainder is dropped; shuffling varies it
        order = jax.random.permutation(perm_key, images.shape[0])[:used]
        order = order.reshape(steps_per_epoch, batch_size)

        def step(state, inputs):
            idx, i = inputs
            data_key, model_key = jax.random.split(jax.random.fold_in(step_key, i))
            x = data.preprocess(
                images[idx], data_key, num_levels, data_cfg.binarization, data_cfg.dequantize
            )
            batch = {"x": x, "y": labels[idx]}
            if model.labelled_batch_size:
                batch.update(labelled_minibatch(images, labels, jax.random.fold_in(data_key, 1)))
            return model.train_step(state, batch, model_key)

        state, step_metrics = jax.lax.scan(step, state, (order, jnp.arange(steps_per_epoch)))
        # Mean over all minibatches of the epoch (equal sizes), not the last one.
        return state, jax.tree.map(jnp.mean, step_metrics)

    return jax.jit(train_epoch, donate_argnums=0)


def make_evaluate(model: models.Model, config) -> Callable:
    """jit(params, images, labels, key) -> per-example means of `model.eval_terms` over a split.

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
            terms = model.eval_terms(params, batch, model_key)
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

    return jax.jit(evaluate)


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


def restore_latest(manager: ocp.CheckpointManager, state: optim.TrainState):
    """(state, epoch) from the latest checkpoint, or (state, 0) if there is none."""
    epoch = manager.latest_step()
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
    `train/<name>` and `<eval split>/<name>` entries.
    """
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    write_or_check_config(config, workdir, allow_config_change)
    file_log = logging.FileHandler(os.path.join(workdir, "log.txt"))
    file_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    file_log.addFilter(QuietLibraries())
    logging.getLogger().addHandler(file_log)
    try:
        return _run(config, workdir)
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()


def _run(config, workdir: str) -> dict[str, float]:
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    train, eval_split = dataset.train, dataset.eval_split(config.data.eval_split)
    batch_size, num_epochs = config.train.batch_size, config.train.num_epochs
    if batch_size > train.size:
        raise ValueError(
            f"config.train.batch_size={batch_size} exceeds the {train.size} training examples."
        )
    steps_per_epoch = train.size // batch_size

    root = jax.random.key(config.seed)
    tx = optim.make(config.optimizer, steps_per_epoch, num_epochs)
    example = {
        "x": jnp.zeros((batch_size, *dataset.spec.shape)),
        "y": jnp.zeros((batch_size,), jnp.int32),
    }
    state = model.init_state(jax.random.fold_in(root, _INIT), example, tx)
    manager = checkpoint_manager(workdir, config)
    state, start_epoch = restore_latest(manager, state)
    last_saved = start_epoch

    log = metrics.MetricsLog(workdir)
    log.event(
        "start",
        resumed_from_epoch=start_epoch,
        units={"recon": model.units.description, "sq_err": "squared error per image, summed"},
        num_params=int(sum(p.size for p in jax.tree.leaves(state.params))),
    )
    if start_epoch:
        logging.info("Resumed from the checkpoint of epoch %d.", start_epoch)
    labelled = None
    if model.labelled_batch_size:
        labelled = data.labelled_subset(
            np.asarray(train.labels),
            model.num_labelled,
            dataset.spec.num_classes,
            config.data.split_seed,
        )
    train_epoch = make_train_epoch(model, config, steps_per_epoch, labelled)
    evaluate = make_evaluate(model, config)
    train_key, eval_key = jax.random.fold_in(root, _TRAIN), jax.random.fold_in(root, _EVAL)
    final: dict[str, float] = {}
    try:
        for epoch in range(start_epoch + 1, num_epochs + 1):
            start = time.perf_counter()
            state, train_metrics = train_epoch(
                state, train.images, train.labels, jax.random.fold_in(train_key, epoch)
            )
            train_metrics = {k: float(v) for k, v in jax.device_get(train_metrics).items()}
            seconds = time.perf_counter() - start
            bad = [k for k, v in train_metrics.items() if not np.isfinite(v)]
            if bad:
                raise FloatingPointError(
                    f"Non-finite training metrics at epoch {epoch}: "
                    f"{', '.join(f'{k}={train_metrics[k]}' for k in bad)}. This epoch's parameters "
                    f"were discarded; the last good checkpoint (epoch {last_saved}) is kept in "
                    f"{manager.directory}. Try a smaller config.optimizer.learning_rate or set "
                    "config.optimizer.grad_clip_norm."
                )
            train_metrics["examples_per_sec"] = steps_per_epoch * batch_size / seconds
            lr = optim.current_learning_rate(state.opt_state)
            if lr is not None:
                train_metrics["learning_rate"] = float(lr)
            step = int(state.step)
            log.write(step=step, epoch=epoch, split="train", values=train_metrics)
            final = {f"train/{k}": v for k, v in train_metrics.items()}
            line = f"epoch {epoch}/{num_epochs}  train: {_format(train_metrics, ['loss'])}"

            if epoch % config.train.eval_every == 0 or epoch == num_epochs:
                eval_metrics = evaluate(
                    state.params, eval_split.images, eval_split.labels, eval_key
                )
                eval_metrics = {k: float(v) for k, v in jax.device_get(eval_metrics).items()}
                log.write(step=step, epoch=epoch, split=config.data.eval_split, values=eval_metrics)
                final.update({f"{config.data.eval_split}/{k}": v for k, v in eval_metrics.items()})
                shown = [model.bound_name, model.recon_name, "kl"]
                line += f"  {config.data.eval_split}: {_format(eval_metrics, shown)}"

            if epoch % config.checkpoint.every_epochs == 0 or epoch == num_epochs:
                manager.save(epoch, args=ocp.args.StandardSave(state))
                last_saved = epoch
            logging.info(
                "%s  %.0f examples/s  %.1f s", line, train_metrics["examples_per_sec"], seconds
            )
    finally:
        manager.wait_until_finished()
        manager.close()
        log.close()
    return final
