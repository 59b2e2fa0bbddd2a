"""Training: `train_and_evaluate(config, workdir)` is the whole run, top to bottom.

It checks the config, loads the data onto the device, builds the model and its optimizer, restores
the latest checkpoint in `workdir` if there is one (else, with `config.train.pretrain_epochs`, first
pretrains the layers one by one: `pretrain.py`), and runs the epochs: one compiled epoch of
minibatch steps (`epoch.py`), an evaluation every `config.train.eval_every` epochs, metrics and a
progress line each epoch, a checkpoint every `config.checkpoint.every_epochs`. Randomness comes
from one root key (`config.seed`): epoch e uses fold_in(root, e), so a run resumed from the
checkpoint of epoch e replays exactly the epochs an uninterrupted run would have. Under the entry
points' signal handlers (`interrupts.py`), SIGINT or SIGTERM stops the loop at the next epoch
boundary, that epoch saved. With `config.vmap`, the same loop trains several members at once
(`members.py`). Launched as several processes (`parallel.initialize`), every process runs this same
loop on the global mesh: the same compiled epochs, saves and restores, the same decision to stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import time
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging as absl_logging

from autoencoders import (
    cpu_matmuls,
    data,
    epoch,
    interrupts,
    likelihoods,
    members,
    metrics,
    models,
    networks,
    optim,
    parallel,
    pretrain,
    progress,
)
from autoencoders import workdir as workdirs

Array = jax.Array

# Salts for fold_in: independent random streams from the one root key.
_INIT, _TRAIN, _EVAL, _PRETRAIN = 0, 1, 2, 3

# Units of the metrics the loop adds to a family's own terms (`Model.term_units`).
LOOP_UNITS = {
    "examples_per_sec": "training examples per second, this epoch (wall clock, with evaluation "
    "and checkpointing left out)",
    "learning_rate": "the optimizer's learning rate at the end of the epoch",
}


def check_config(config: ml_collections.ConfigDict) -> data.DataSpec:
    """Every config check that can run before data is loaded or anything compiles."""
    for key, value in workdirs.flatten(config.to_dict()).items():
        values = value if isinstance(value, list | tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError(f"config.{key}={value}: must be a finite number.")
    for member in members.member_configs(config):
        check_config(member)  # each member is a valid run on its own
    if parallel.multi_process() and members.vmapped(config):
        raise ValueError(
            f"config.vmap={dict(config.vmap)}: vmapped members train in one process; launch "
            "this run as a single process, or make the members outer sweep axes."
        )
    if parallel.multi_process() and not config.train.data_parallel:
        raise ValueError(
            "config.train.data_parallel=False: a run of several processes trains data-parallel "
            "over all their devices; set it to True or launch a single process."
        )
    cpu_matmuls.requested()  # AUTOENCODERS_CPU_MATMULS, checked before anything compiles
    for field in ("batch_size", "num_epochs", "eval_every", "eval_batch_size"):
        if config.train[field] <= 0:
            raise ValueError(f"config.train.{field}={config.train[field]}: must be > 0.")
    if config.train.epoch_loop not in epoch.EPOCH_LOOPS:
        raise ValueError(
            f"config.train.epoch_loop={config.train.epoch_loop!r}: must be one of "
            f"{', '.join(epoch.EPOCH_LOOPS)}."
        )
    for field in ("every_epochs", "max_to_keep"):
        if config.checkpoint[field] <= 0:
            raise ValueError(f"config.checkpoint.{field}={config.checkpoint[field]}: must be > 0.")
    family = models.family(config.model.family)
    family.check_config(config)
    pretrain.check_config(config, family)
    optim.check_config(config.optimizer)
    spec = data.describe(config.data)
    likelihoods.check_compatible(config.likelihood, spec.kind, spec.num_levels)
    networks.check_config(config.network, spec.shape)
    likelihood = likelihoods.make(config.likelihood, spec.num_levels)
    outputs = likelihood.num_params
    if config.network.get("output_bias", "zeros") == "data_mean":
        likelihood.params_at_mean(np.full(spec.shape, 0.5))  # a clear error where it has none
    networks.check_tied(config.network, config.model.family, family.encoder_outputs_code, outputs)
    return spec


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a run builds before training: data on device, the model, its optimizer, sizes."""

    model: models.Model
    tx: Any  # optax.GradientTransformation
    train: data.Split
    eval_split: data.Split
    steps_per_epoch: int
    example: dict[str, Array]  # a batch of zeros, for initialisation
    context: Any  # the family's `training_context` (M2's labelled subset), usually None
    mesh: parallel.Mesh | None  # data parallelism over all devices (None: one device)
    streamed: bool  # the splits stay in host memory, sent a minibatch at a time
    # The training inputs' mean image (H, W, C) where `config.network.output_bias='data_mean'`
    # starts the decoder at it (`Model.start_at_data_mean`); None otherwise.
    x_mean: np.ndarray | None = None


def setup(config, data_parallel: bool = True) -> Setup:
    """Each process of a multi-process run loads the whole dataset and holds it replicated, its
    copy being its part of the global arrays (`parallel.replicate`)."""
    mesh = parallel.global_mesh(config) if data_parallel else None
    parallel.check_divisible(config.train.batch_size, mesh, "config.train.batch_size")
    parallel.check_divisible(config.train.eval_batch_size, mesh, "config.train.eval_batch_size")
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    batch_size = config.train.batch_size
    if batch_size > dataset.train.size:
        raise ValueError(
            f"config.train.batch_size={batch_size} exceeds the {dataset.train.size} training "
            "examples."
        )
    steps_per_epoch = dataset.train.size // batch_size
    streamed = dataset.train.streamed
    if streamed:
        _check_streamable(config, model)
    context = model.training_context(np.asarray(dataset.train.labels), config.data.split_seed)
    x_mean = None
    if config.network.get("output_bias", "zeros") == "data_mean":
        x_mean = data.mean_input(dataset.train, dataset.spec.num_levels, config.data.dequantize)
    return Setup(
        model=model,
        tx=optim.make(config.optimizer, steps_per_epoch, config.train.num_epochs),
        train=_replicate(dataset.train, mesh),
        eval_split=_replicate(dataset.eval_split(config.data.eval_split), mesh),
        steps_per_epoch=steps_per_epoch,
        example={
            "x": jnp.zeros((batch_size, *dataset.spec.shape)),
            "y": jnp.zeros((batch_size,), jnp.int32),
        },
        context=context,
        mesh=mesh,
        streamed=streamed,
        x_mean=x_mean,
    )


def _check_streamable(config, model: models.Model) -> None:
    """A streamed dataset feeds one minibatch at a time to one program on this process."""
    budget = f"config.data.device_budget_mb={data.device_budget_mb(config.data)}"
    if members.vmapped(config):
        raise ValueError(f"{budget}: the dataset streams, and vmapped members cannot; raise it.")
    if parallel.multi_process():
        raise ValueError(f"{budget}: the dataset streams, and a multi-process run cannot.")
    if model.labelled_minibatches:
        raise ValueError(
            f"{budget}: the dataset streams, and {config.model.family}'s labelled minibatches "
            "draw from the whole training split on the device; raise it."
        )


def _replicate(split: data.Split, mesh: parallel.Mesh | None) -> data.Split:
    if split.streamed:
        return split
    images, labels = parallel.replicate((split.images, split.labels), mesh)
    return dataclasses.replace(split, images=images, labels=labels)


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str, *, allow_config_change: bool = False
) -> dict[str, float]:
    """Trains `config` in `workdir`, resuming from its latest checkpoint; returns final metrics.

    Metrics are per-example means (nats per image for likelihood terms); the final dict holds
    `train/<name>` and `<eval split>/<name>` entries (`<member>/...` for vmapped members).
    """
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    # Checked before the lock is taken, so a refused run changes nothing in the workdir.
    changes = workdirs.config_changes(config, workdir, allow_config_change)
    with workdirs.lock(workdir), workdirs.file_log(workdir), _vmapped_fields_are_traced(config):
        workdirs.write_config(config, workdir, changes)
        members.write_configs(config, workdir, allow_config_change)
        vmapped = members.vmapped(config)
        run = setup(config, data_parallel=not vmapped)
        # On a terminal, the steps of each epoch too where they run one by one (per-step loops:
        # convolutions on CPU, streamed data), which is where epochs are slow.
        per_step = not vmapped and (run.streamed or epoch.epoch_loop(config) == "steps")
        steps_bar = (
            progress.Progress(run.steps_per_epoch, "steps", lines=False, inner=True)
            if per_step and progress.on_terminal()
            else None
        )
        model, num_epochs = run.model, config.train.num_epochs
        root = jax.random.key(config.seed)
        if vmapped:  # several settings as one vmapped program, each with its own directory
            salts = (_INIT, _TRAIN, _EVAL)
            program = members.program(
                config, model.spec, run.steps_per_epoch, run.example, run.context, salts,
                run.x_mean, compiler_options=cpu_matmuls.fixed().options,
            )  # fmt: skip
            state, train_epoch, evaluate = program.state, program.train_epoch, program.evaluate
            train_key, eval_key = program.train_key, program.eval_key
            out = members.MemberDirs(workdir, config)
        else:
            state = model.init_state(jax.random.fold_in(root, _INIT), run.example, run.tx)
            if run.x_mean is not None:
                state = model.start_at_data_mean(state, run.x_mean)
            state = parallel.replicate(state, run.mesh)  # restored checkpoints land replicated too
            train_key, eval_key = jax.random.fold_in(root, _TRAIN), jax.random.fold_in(root, _EVAL)
            out = workdirs.RunDir(workdir, config)

        with contextlib.closing(out):
            state, start_epoch = out.restore(state)
            out.start(
                state,
                start_epoch,
                headline=model.headline,
                units={**model.term_units(), **LOOP_UNITS},
            )
            if not vmapped:  # compiled with the products measured faster on this CPU
                matmuls = _matmul_choice(run, config, state, workdir, start_epoch < num_epochs)
                logging.info("%s.", matmuls.describe())
                if out.log is not None and start_epoch < num_epochs:  # kept on resuming
                    out.log.event("cpu_matmuls", kernels=matmuls.kernels, reason=matmuls.reason)
                train_epoch = epoch.make_train_epoch(
                    model, run.tx, config, run.steps_per_epoch, run.context, run.mesh,
                    streamed=run.streamed, on_step=steps_bar.reach if steps_bar else None,
                    compiler_options=matmuls.options,
                )  # fmt: skip
                evaluate = epoch.make_evaluate(
                    model, config, run.mesh, streamed=run.streamed, compiler_options=matmuls.options
                )
            if start_epoch == 0 and config.train.pretrain_epochs:
                state = _pretrained(run, state, jax.random.fold_in(root, _PRETRAIN), out)
            if start_epoch >= num_epochs:
                logging.info(
                    "Complete: %s holds all %d epochs; nothing to train (raise "
                    "config.train.num_epochs to go on; `experiments.evaluate` evaluates it).",
                    workdir,
                    num_epochs,
                )
            elif start_epoch:
                logging.info(
                    "Resumed from the checkpoint of epoch %d of %d.", start_epoch, num_epochs
                )
            split = config.data.eval_split
            shown = {"train": ("loss",), split: model.progress_terms}
            examples = run.steps_per_epoch * config.train.batch_size
            last_saved = start_epoch
            if _stop_requested():
                _stop(f"at epoch {start_epoch}")
            clock = CompileClock()
            # On a terminal, a bar of epochs with the time left, the epoch lines above it.
            bar = progress.Progress(num_epochs - start_epoch, "epochs", "epoch", lines=False)
            with (
                bar,
                steps_bar or contextlib.nullcontext(),
                bar.above(absl_logging.get_absl_handler().python_handler),
            ):
                for epoch_number in range(start_epoch + 1, num_epochs + 1):
                    start, _ = time.perf_counter(), clock.take()
                    if steps_bar:
                        steps_bar.reset()
                    state, train_metrics = train_epoch(
                        state, run.train.images, run.train.labels, _fold_in(train_key, epoch_number)
                    )
                    train_metrics = jax.device_get(train_metrics)
                    seconds, compiling = time.perf_counter() - start, clock.take()
                    _check_finite(train_metrics, epoch_number, last_saved, workdir)

                    # Throughput of the training itself: the epoch's time less its compiling.
                    train_metrics["examples_per_sec"] = np.full_like(
                        train_metrics["loss"], examples / max(seconds - compiling, 1e-9)
                    )
                    learning_rate = optim.current_learning_rate(state.opt_state)
                    if learning_rate is not None:
                        train_metrics["learning_rate"] = jax.device_get(learning_rate)
                    eval_metrics = None
                    if epoch_number % config.train.eval_every == 0 or epoch_number == num_epochs:
                        eval_metrics = jax.device_get(
                            evaluate(
                                state.params, run.eval_split.images, run.eval_split.labels, eval_key
                            )
                        )
                    rows = {"train": train_metrics, split: eval_metrics}
                    out.write_epoch(
                        epoch_number,
                        state.step,
                        rows,
                        shown=shown,
                        seconds=seconds,
                        compiling=compiling,
                    )

                    # After SIGINT or SIGTERM (`interrupts.install`): save this epoch and stop.
                    stopping = _stop_requested()
                    every = config.checkpoint.every_epochs
                    if stopping or epoch_number % every == 0 or epoch_number == num_epochs:
                        out.save(epoch_number, state)
                        last_saved = epoch_number
                    if stopping:
                        _stop(f"at epoch {epoch_number}")
                    bar.update(1)
            return out.final


def _matmul_choice(run: Setup, config, state: Any, workdir: str, probe: bool) -> cpu_matmuls.Choice:
    """XLA:CPU's product kernels for the run's epoch and evaluation (`cpu_matmuls`): where
    AUTOENCODERS_CPU_MATMULS is 'auto', the faster on a short epoch of the run's own program
    (`epoch.choose_cpu_matmuls`). A resumed run keeps the choice its metrics.jsonl recorded, so
    it computes what it would have computed uninterrupted. Not probed, XLA's default kept:
    streamed and multi-process runs (every process must compile the same program), runs whose
    epoch is a per-step loop (the probe times scanned steps), and runs with nothing left to
    train."""
    path = os.path.join(workdir, metrics.METRICS_FILE)
    earlier = metrics.events(path, "cpu_matmuls") if os.path.exists(path) else []
    if earlier:
        return cpu_matmuls.recorded(earlier[-1]["kernels"])
    too_short = run.steps_per_epoch < epoch.PROBE_STEPS
    per_step = epoch.epoch_loop(config) == "steps"
    if not probe or run.streamed or parallel.multi_process() or too_short or per_step:
        return cpu_matmuls.fixed()
    return epoch.choose_cpu_matmuls(
        run.model, run.tx, config, state, run.train.images, run.train.labels, run.context, run.mesh
    )


def _pretrained(run: Setup, state: Any, key: Array, out: workdirs.RunDir) -> Any:
    """`state` with greedy layer-wise pretrained parameters (`pretrain.py`), before epoch 1."""
    if run.streamed:
        raise ValueError(
            f"config.train.pretrain_epochs={run.model.config.train.pretrain_epochs}: pretraining "
            "needs the training images on the device; this dataset streams from host memory "
            "(raise config.data.device_budget_mb)."
        )

    def log(**fields: Any) -> None:
        if out.log is not None:
            out.log.event("pretrain", **fields)

    params = pretrain.pretrain(run.model, state.params, run.train.images, key, log)
    return parallel.replicate(state.replace(params=params), run.mesh)


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling (or loading compiled programs from
    its cache), from `jax.monitoring`'s duration events: reported apart from throughput."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
        "/jax/compilation_cache/cache_retrieval_time_sec",
    )
    _seconds = 0.0  # all clocks count the same events: the listener is registered once
    _registered = False

    @classmethod
    def _listen(cls, event: str, duration: float, **kwargs: Any) -> None:
        if event in cls.EVENTS:
            CompileClock._seconds += duration

    def __init__(self):
        if not CompileClock._registered:
            jax.monitoring.register_event_duration_secs_listener(CompileClock._listen)
            CompileClock._registered = True
        self._mark = CompileClock._seconds

    def take(self) -> float:
        """Seconds of compiling since the last `take` (or since this clock was made)."""
        now = CompileClock._seconds
        seconds, self._mark = now - self._mark, now
        return seconds


def _stop_requested() -> bool:
    """Whether SIGINT or SIGTERM was recorded, in this process or in any other of a multi-process
    run: they stop at the same epoch boundary, or those going on would wait for the others."""
    return parallel.any_process(interrupts.requested())


def _stop(where: str) -> NoReturn:
    """Raises `interrupts.Interrupted`: this process's signal, or another process's."""
    interrupts.check(where)
    raise interrupts.Interrupted(signal.SIGTERM, where)


def _fold_in(key: Array, data_: int) -> Array:
    """fold_in for one key, or for a stack of vmapped members' keys."""
    if key.shape:
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(key, data_)
    return jax.random.fold_in(key, data_)


def _check_finite(values: dict[str, Any], epoch_number: int, last_saved: int, workdir: str):
    """A NaN or Inf stops the run before anything of the epoch is written or saved."""
    bad = {k: v for k, v in values.items() if not np.all(np.isfinite(v))}
    if bad:
        kept = (
            f"the last good checkpoint (epoch {last_saved}) is kept in {workdir}"
            if last_saved
            else f"no checkpoint was written yet in {workdir}"
        )
        raise FloatingPointError(
            f"Non-finite training metrics at epoch {epoch_number}: "
            f"{', '.join(f'{k}={v}' for k, v in bad.items())}. This epoch's parameters were "
            f"discarded; {kept}. Try a smaller config.optimizer.learning_rate or set "
            "config.optimizer.grad_clip_norm."
        )


@contextlib.contextmanager
def _vmapped_fields_are_traced(config):
    """A clear error when some code reads a vmapped field as a Python number while tracing."""
    try:
        yield
    except jax.errors.ConcretizationTypeError as e:
        raise ValueError(
            f"config.vmap={dict(config.vmap)}: a vmapped field is used as a Python number (in an "
            "`if` or a shape), so it cannot be a traced value; make it an outer sweep axis."
        ) from e
