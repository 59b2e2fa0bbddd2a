"""What a program's parts take alone, for the tables that say where its time goes: a training
step's dense-layer products and its optimizer update (`step_matmul_seconds`,
`optimizer_step_seconds`), and an importance-sampling block's whole, matmuls, likelihood, random
draws and activations (`is_block_parts`). Each part runs many times in one jitted loop whose
inputs depend on the loop's carry (so XLA can neither hoist nor drop it); best of the repeats."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from autoencoders import data, networks
from benchmarks import timing
from benchmarks.architectures import Architecture
from benchmarks.measure import JaxModel


def step_matmul_seconds(arch: Architecture, steps: int, repeats: int) -> tuple[float, int] | None:
    """(seconds per step, FLOPs per step) of a training step's dense-layer products alone, `steps`
    steps in one jitted loop (best of `repeats`): forward x·W, weight gradient xᵀ·g and input
    gradient g·Wᵀ (none for the first encoder layer, whose input is data), at the step's shapes.
    None for convolutional models."""
    if arch.kind != "mlp":
        return None
    batch = arch.batch_size
    layers = [
        *itertools.pairwise(arch.encoder_dense_dims()),
        *itertools.pairwise(arch.decoder_dense_dims()),
    ]
    keys = iter(jax.random.split(jax.random.key(0), 3 * len(layers)))
    xs = [jax.random.normal(next(keys), (batch, i)) for i, _ in layers]
    ws = [jax.random.normal(next(keys), (i, o)) for i, o in layers]
    gs = [jax.random.normal(next(keys), (batch, o)) for _, o in layers]
    flops = sum(2 * batch * i * o * (2 if n == 0 else 3) for n, (i, o) in enumerate(layers))

    @jax.jit
    def loop(xs, ws, gs):
        def step(carry, _):
            scale = 1.0 + 1e-30 * carry  # inputs depend on the carry: nothing leaves the loop
            total = carry
            for n, (x, w, g) in enumerate(zip(xs, ws, gs, strict=True)):
                x, g = x * scale, g * scale
                total += jnp.sum(x @ w) + jnp.sum(x.T @ g)
                if n:
                    total += jnp.sum(g @ w.T)
            return total * 1e-30, None

        return jax.lax.scan(step, jnp.zeros(()), None, length=steps)[0]

    seconds = timing.best_seconds(lambda: loop(xs, ws, gs).block_until_ready(), repeats)
    return seconds / steps, flops


def optimizer_step_seconds(
    arch: Architecture, spec: data.DataSpec, steps: int, repeats: int
) -> float:
    """Seconds per step of the model's optimizer update alone (the config's optax Adam on its
    parameters, with fixed gradients), `steps` updates in one jitted loop, best of `repeats`."""
    jm = JaxModel.build(arch, spec, steps)
    params = jm.init_state(jax.random.key(0)).params
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)

    @functools.partial(jax.jit, donate_argnums=0)
    def loop(state, grads):
        def step(state, _):
            params, opt_state = state
            updates, opt_state = jm.tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, state, None, length=steps)[0]

    state = (params, jm.tx.init(params))

    def call() -> None:
        nonlocal state
        state = jax.block_until_ready(loop(state, grads))

    return timing.best_seconds(call, repeats) / steps


# Blocks per timed loop of `is_block_parts`: ~0.3 s on a 2-core CPU, ~1 ms on a GPU.
IS_BLOCK_CALLS = 20


@dataclasses.dataclass
class ISBlockParts:
    """Seconds per importance-sampling block (`examples` × `samples` (example, sample) pairs):
    the whole block and its parts alone; `rest_s` is what the parts leave of the whole."""

    examples: int
    samples: int
    whole_s: float
    matmuls_s: float
    likelihood_s: float
    draws_s: float
    activations_s: float

    @property
    def pairs(self) -> int:
        return self.examples * self.samples

    @property
    def parts_s(self) -> dict[str, float]:
        return {
            "matmuls": self.matmuls_s,
            "likelihood": self.likelihood_s,
            "z draws": self.draws_s,
            "activations": self.activations_s,
        }

    @property
    def rest_s(self) -> float:
        return self.whole_s - sum(self.parts_s.values())


def loop_seconds(
    part: Callable[[Any, jax.Array, jax.Array], Any], inputs: Any, calls: int, repeats: int
) -> float:
    """Seconds per call of part(inputs, scale, key), `calls` calls in one jitted scan, best of
    `repeats` after a warm-up (which compiles). `scale` is 1 + 1e-30·carry: inputs multiplied by
    it depend on the previous call's output, whose sum is the carry, so no call is hoisted."""

    @jax.jit
    def loop(inputs: Any, key: jax.Array) -> jax.Array:
        def body(carry: jax.Array, c: jax.Array) -> tuple[jax.Array, None]:
            out = part(inputs, 1.0 + 1e-30 * carry, jax.random.fold_in(key, c))
            total = sum(jnp.sum(leaf) for leaf in jax.tree.leaves(out))
            return carry + 1e-30 * total, None

        return jax.lax.scan(body, jnp.zeros(()), jnp.arange(calls))[0]

    key = jax.random.key(0)
    return timing.best_seconds(lambda: loop(inputs, key).block_until_ready(), repeats) / calls


def is_block_parts(
    arch: Architecture,
    spec: data.DataSpec,
    examples: int,
    samples: int,
    repeats: int,
    calls: int = IS_BLOCK_CALLS,
) -> ISBlockParts | None:
    """Seconds per block of importance-sampled evaluation (`examples` × `samples`), whole and by
    part; None for convolutional models.

    whole: the estimator's work on one block of one sample chunk, as `density` does it: a vmap over
    the examples of `model.log_importance_weights` (a batch of one, its own key) and a logsumexp
    over the samples. Parts, forward only, at the block's shapes: the dense-layer products x·W
    (the encoder on `examples` rows, the decoder on examples·samples rows; no biases); the
    likelihood's log-probability of the decoder's outputs, summed per row; the standard-normal
    draws of z (one key per sample, as `log_importance_weights` splits them); the hidden layers'
    activations (encoder and decoder)."""
    if arch.kind != "mlp":
        return None
    jm = JaxModel.build(arch, spec, 1)
    model = jm.model
    params = jm.init_state(jax.random.key(0)).params
    rows = examples * samples
    shape = model.spec.shape  # the architecture's own images
    pixels = math.prod(shape)
    keys = iter(jax.random.split(jax.random.key(1), 64))
    x = jax.random.bernoulli(next(keys), 0.5, (examples, *shape)).astype(jnp.float32)
    y = jnp.zeros((examples,), jnp.int32)

    def whole(inputs: Any, scale: jax.Array, key: jax.Array) -> jax.Array:
        params, x, y = inputs

        def one(x_i: jax.Array, y_i: jax.Array, k: jax.Array) -> jax.Array:
            batch = {"x": x_i[None], "y": y_i[None]}
            log_w = model.log_importance_weights(params, batch, k, samples)  # (samples, 1)
            return jax.nn.logsumexp(log_w, axis=0)

        return jax.vmap(one)(x * scale, y, jax.random.split(key, examples))

    encoder = list(itertools.pairwise(arch.encoder_dense_dims()))
    decoder = list(itertools.pairwise(arch.decoder_dense_dims()))
    layers = [(examples, i, o) for i, o in encoder] + [(rows, i, o) for i, o in decoder]
    products = [
        (jax.random.normal(next(keys), (n, i)), jax.random.normal(next(keys), (i, o)) / i**0.5)
        for n, i, o in layers
    ]

    def matmuls(inputs: Any, scale: jax.Array, key: jax.Array) -> list[jax.Array]:
        return [jnp.sum((h * scale) @ w) for h, w in inputs]

    num_params = model.likelihood.num_params
    logits = jax.random.normal(next(keys), (examples, samples, pixels, num_params))
    targets = x.reshape(examples, 1, pixels)

    def likelihood(inputs: Any, scale: jax.Array, key: jax.Array) -> jax.Array:
        logits, targets = inputs
        return jnp.sum(model.likelihood.log_prob(logits * scale, targets), axis=-1)

    def draws(inputs: Any, scale: jax.Array, key: jax.Array) -> jax.Array:
        def one(k: jax.Array) -> jax.Array:
            sample = functools.partial(jax.random.normal, shape=(1, arch.latent_dim))
            return jax.vmap(sample)(jax.random.split(k, samples))

        return scale * jax.vmap(one)(jax.random.split(key, examples))

    act = networks.ACTIVATIONS[arch.activation]
    hidden = [(examples, width) for width in arch.hidden]
    hidden += [(rows, width) for width in reversed(arch.hidden)]
    activations_in = [jax.random.normal(next(keys), shape) for shape in hidden]

    def activations(inputs: Any, scale: jax.Array, key: jax.Array) -> list[jax.Array]:
        return [jnp.sum(act(h * scale)) for h in inputs]

    def seconds(part: Callable[[Any, jax.Array, jax.Array], Any], inputs: Any) -> float:
        return loop_seconds(part, inputs, calls, repeats)

    return ISBlockParts(
        examples,
        samples,
        whole_s=seconds(whole, (params, x, y)),
        matmuls_s=seconds(matmuls, products),
        likelihood_s=seconds(likelihood, (logits, targets)),
        draws_s=seconds(draws, None),
        activations_s=seconds(activations, activations_in),
    )
