"""The compiled functions of training: one epoch of minibatch steps, and evaluation of a split.

`make_train_epoch` returns (state, images, labels, key) -> (state, epoch-mean metrics). The epoch
shuffles on device and runs its steps either as one jit-compiled `lax.scan` (Python runs once per
epoch, not once per step) or, where XLA runs a step's operations badly inside a loop body
(convolutions on CPU), as a Python loop over one compiled step: the same steps with the same keys.
A step preprocesses its minibatch (binarization, dequantization) on device and takes one gradient
step of the family's objective `model.loss`, or a `multi_phase` family's own `train_step`.
`scanned_steps` is the scanned epoch's steps over given minibatches, which
`choose_cpu_matmuls` compiles with each of XLA:CPU's product libraries and times (`cpu_matmuls`).
`make_evaluate` returns (params, images, labels, key) -> per-example means of `model.eval_terms`.
Both are pure functions of their arguments, so vmapped members (`members.py`) reuse them as they
are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoencoders import conv, cpu_matmuls, data, models, parallel

Array = jax.Array
EPOCH_LOOPS = ("auto", "scan", "steps")
# The steps of the epoch that `choose_cpu_matmuls` compiles and times with each library's products.
PROBE_STEPS = 2


def epoch_loop(config) -> str:
    """'scan' or 'steps' for `config.train.epoch_loop` ('auto': scan, except for convolutional
    networks on CPU lowered to XLA's own convolutions (AUTOENCODERS_CONV_LOWERING=xla, see
    `conv.lowering`), which XLA:CPU runs ~25× slower inside a loop body than outside one; the
    default CPU lowering, matrix products, runs as fast in a scan, and the scan saves ~15% of a
    step)."""
    if config.train.epoch_loop != "auto":
        return config.train.epoch_loop
    slow_loop_convs = (
        config.network.kind == "conv"
        and jax.default_backend() == "cpu"
        and conv.lowering("cpu") == "xla"
    )
    return "steps" if slow_loop_convs else "scan"


def preprocessor(model: models.Model, data_cfg) -> Callable[[Array, Array], Array]:
    """(raw images, key) -> model inputs, as `config.data` asks (binarization, dequantization)."""

    def preprocess(images: Array, key: Array) -> Array:
        return data.preprocess(
            images, key, model.spec.num_levels, data_cfg.binarization, data_cfg.dequantize
        )

    return preprocess


def make_train_epoch(
    model: models.Model,
    tx: optax.GradientTransformation,
    config,
    steps_per_epoch: int,
    context: Any = None,
    mesh: parallel.Mesh | None = None,
    *,
    compiled: bool = True,
    streamed: bool = False,
    on_step: Callable[[int], Any] | None = None,
    compiler_options: Mapping[str, str] | None = None,
) -> Callable:
    """(state, images, labels, key) -> (state, epoch-mean metrics), donating the state.

    `context` is the family's `training_context` (labelled-example indices for M2). With a `mesh`,
    each minibatch is split over its devices (data parallelism, `parallel.py`). `compiled=False`
    returns the scanned epoch unjitted, for callers that wrap it further (vmapped members).
    `streamed`: images and labels are host (numpy) arrays, too large for the device; each
    minibatch is gathered on the host and sent, in the order and with the keys of the device
    path, so the epoch is the same computation as the per-step loop on device-resident data.
    `on_step(steps done)`: called after each step of the per-step loops (a progress bar).
    `compiler_options`: XLA's, for the compiled step or epoch (`cpu_matmuls.Choice.options`).
    """
    jit = functools.partial(jax.jit, compiler_options=compiler_options)
    on_step = on_step or (lambda done: None)
    batch_size = config.train.batch_size
    train_step = _train_step(model, tx, config, context, mesh)

    def shuffle(num_examples: int, key: Array) -> tuple[Array, Array]:
        perm_key, step_key = jax.random.split(key)
        used = steps_per_epoch * batch_size  # the remainder is dropped; shuffling varies it
        order = jax.random.permutation(perm_key, num_examples)[:used]
        return order.reshape(steps_per_epoch, batch_size), step_key

    shuffle_jit = jax.jit(shuffle, static_argnums=0)
    if streamed:
        within_batch = jnp.arange(batch_size)  # the minibatch is gathered already: all of it

        def streamed_step(state, i, images, labels, step_key):
            return train_step(state, (within_batch, i), images, labels, step_key)

        streamed_step_jit = jit(streamed_step, donate_argnums=0)

        def train_epoch_streamed(state, images, labels, key):
            order, step_key = shuffle_jit(images.shape[0], key)
            order, step_metrics = np.asarray(order), []
            for i in range(steps_per_epoch):
                batch = order[i]
                state, metrics = streamed_step_jit(state, i, images[batch], labels[batch], step_key)
                step_metrics.append(metrics)
                on_step(i + 1)
            return state, jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *step_metrics)

        return train_epoch_streamed

    if compiled and epoch_loop(config) == "steps":
        step_jit = jit(train_step, donate_argnums=0)

        def train_epoch_by_steps(state, images, labels, key):
            order, step_key = shuffle_jit(images.shape[0], key)
            step_metrics = []
            for i in range(steps_per_epoch):
                state, metrics = step_jit(state, (order[i], i), images, labels, step_key)
                step_metrics.append(metrics)
                on_step(i + 1)
            return state, jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *step_metrics)

        return train_epoch_by_steps

    run_steps = scanned_steps(model, tx, config, context, mesh)

    def train_epoch(state, images, labels, key):
        order, step_key = shuffle(images.shape[0], key)
        return run_steps(state, order, step_key, images, labels)

    return jit(train_epoch, donate_argnums=0) if compiled else train_epoch


def _train_step(model: models.Model, tx: optax.GradientTransformation, config, context, mesh):
    """train_step(state, (indices, i), images, labels, step_key, x=None) -> (state, metrics): one
    minibatch step, the minibatch `images[indices]` and step i's keys from `step_key`; `x`, its
    model inputs where made already (`minibatch_inputs` of `scanned_steps`)."""
    preprocess = preprocessor(model, config.data)

    def train_step(state, inputs, images, labels, step_key, x=None):
        indices, i = inputs
        data_key, model_key = step_keys(step_key, i)
        if x is None:
            x = preprocess(images[indices], data_key)
        batch = parallel.shard_batch({"x": x, "y": labels[indices]}, mesh)
        batch = model.add_training_inputs(
            batch, context, images, labels, jax.random.fold_in(data_key, 1), preprocess
        )
        if model.multi_phase:
            return model.train_step(state, batch, model_key, tx)
        grads, terms = jax.grad(model.loss, has_aux=True)(state.params, batch, model_key)
        return state.apply_gradients(grads, tx), model.training_metrics(terms)

    return train_step


def step_keys(step_key: Array, i: Array) -> Array:
    """Step i's (data key, model key): its inputs' random numbers and its model's."""
    return jax.random.split(jax.random.fold_in(step_key, i))


def scanned_steps(
    model: models.Model,
    tx: optax.GradientTransformation,
    config,
    context: Any = None,
    mesh: parallel.Mesh | None = None,
) -> Callable:
    """(state, order, step_key, images, labels) -> (state, mean metrics): the scanned epoch's
    steps, one per row of `order` (steps, batch) of indices into `images`, unjitted."""
    preprocess = preprocessor(model, config.data)
    train_step = _train_step(model, tx, config, context, mesh)

    def run_steps(state, order, step_key, images, labels):
        num_steps = order.shape[0]

        def minibatch_inputs(i):  # step i's model inputs, as train_step would make them
            return preprocess(images[order[i]], step_keys(step_key, i)[0])

        def step(carry, i):
            state, x = carry
            state, metrics = train_step(state, (order[i], i), images, labels, step_key, x)
            # The next step's inputs are made here and carried, so they are made once: made
            # inside the step, XLA:CPU recomputes their random numbers (dequantization noise,
            # binarization) in every fusion that reads them, three times a step for a Gaussian
            # decoder; an optimization_barrier does not stop it. The last step's is not used.
            following = minibatch_inputs(jnp.minimum(i + 1, num_steps - 1))
            return (state, following), metrics

        first = (state, minibatch_inputs(0))
        (state, _), step_metrics = jax.lax.scan(step, first, jnp.arange(num_steps))
        # Mean over all minibatches of the epoch (equal sizes), not the last one.
        return state, jax.tree.map(jnp.mean, step_metrics)

    return run_steps


def choose_cpu_matmuls(
    model: models.Model,
    tx: optax.GradientTransformation,
    config,
    state: Any,
    images: Array,
    labels: Array,
    context: Any = None,
    mesh: parallel.Mesh | None = None,
) -> cpu_matmuls.Choice:
    """XLA:CPU's product library for this model's epoch (`cpu_matmuls.choose`): PROBE_STEPS of
    the scanned epoch's steps (`scanned_steps`) on the first minibatches of `images`, compiled
    with each library, from a copy of `state`; the epoch's shuffle is left out, so that the
    probe times the steps."""
    batch_size = config.train.batch_size
    run_steps = scanned_steps(model, tx, config, context, mesh)

    def probe_steps(state, images, labels):
        order = jnp.arange(PROBE_STEPS * batch_size).reshape(PROBE_STEPS, batch_size)
        return run_steps(state, order, jax.random.key(0), images, labels)

    def probe(options):
        compiled = jax.jit(probe_steps, donate_argnums=0, compiler_options=options)
        probe_state = jax.tree.map(jnp.copy, state)

        def call() -> None:
            nonlocal probe_state
            probe_state = jax.block_until_ready(compiled(probe_state, images, labels))[0]

        return call

    return cpu_matmuls.choose(probe, f"{PROBE_STEPS} steps of the epoch")


def make_evaluate(
    model: models.Model,
    config,
    mesh: parallel.Mesh | None = None,
    *,
    compiled: bool = True,
    streamed: bool = False,
    compiler_options: Mapping[str, str] | None = None,
) -> Callable:
    """(params, images, labels, key) -> per-example means of `model.eval_terms` over a split.

    The split is padded to whole batches and padded rows are masked out, so every example counts
    once. The noise key is fixed by the caller, so the result is the same at every evaluation.
    `streamed`: a host (numpy) split, sent one batch at a time; the same batches and keys.
    `compiler_options`: XLA's, as `make_train_epoch` takes them.
    """
    jit = functools.partial(jax.jit, compiler_options=compiler_options)
    batch_size = config.train.eval_batch_size
    preprocess = preprocessor(model, config.data)

    def batch_sums(params, images, labels, weight, key, i):
        """Sums over one padded batch (`weight` 0 on padding) of each of `model.eval_terms`."""
        data_key, model_key = jax.random.split(jax.random.fold_in(key, i))
        batch = {"x": preprocess(images, data_key), "y": labels}
        terms = model.eval_terms(params, parallel.shard_batch(batch, mesh), model_key)
        return {k: jnp.sum(v * weight) for k, v in terms.items()}

    if streamed:
        batch_sums_jit = jit(batch_sums)

        def evaluate_streamed(params, images, labels, key):
            n, totals = images.shape[0], None
            for i, start in enumerate(range(0, n, batch_size)):
                x, y = images[start : start + batch_size], labels[start : start + batch_size]
                pad = batch_size - len(x)
                weight = np.pad(np.ones(len(x), np.float32), (0, pad))
                x = np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
                y = np.pad(y, (0, pad), constant_values=-1)
                sums = batch_sums_jit(params, x, y, weight, key, i)
                totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
            return {k: v / n for k, v in totals.items()}

        return evaluate_streamed

    def evaluate(params, images, labels, key):
        n = images.shape[0]
        num_batches = -(-n // batch_size)
        pad = num_batches * batch_size - n
        images = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))
        labels = jnp.pad(labels, (0, pad), constant_values=-1)
        mask = (jnp.arange(num_batches * batch_size) < n).astype(jnp.float32)

        def body(totals, i):
            start = i * batch_size
            sums = batch_sums(
                params,
                jax.lax.dynamic_slice_in_dim(images, start, batch_size),
                jax.lax.dynamic_slice_in_dim(labels, start, batch_size),
                jax.lax.dynamic_slice_in_dim(mask, start, batch_size),
                key,
                i,
            )
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

    return jit(evaluate) if compiled else evaluate
