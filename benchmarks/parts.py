"""What a program's parts take alone, for the tables that say where its time goes: a training
step's matrix products and its optimizer update, timed in turn with the step itself
(`step_split`), and an importance-sampling block's whole, matmuls, likelihood, random draws and
activations (`is_block_parts`). Each part runs many times in one jitted loop whose inputs depend
on the loop's carry (so XLA can neither hoist nor drop it); best of the repeats."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.extend.core
import jax.numpy as jnp
import optax

from autoencoders import data, networks
from benchmarks import timing
from benchmarks.architectures import Architecture
from benchmarks.datasets import BenchData
from benchmarks.measure import JaxModel


@dataclasses.dataclass(frozen=True)
class Product:
    """One `lax.dot_general` of a traced program: its operands' shapes and dtypes, their indices
    among the program's distinct operands (products that share an input share the index), and
    how they contract."""

    lhs: jax.ShapeDtypeStruct
    rhs: jax.ShapeDtypeStruct
    operands: tuple[int, int]
    dimension_numbers: Any

    @property
    def flops(self) -> int:
        """2 × multiply-accumulates: every lhs element meets every free rhs element."""
        (_, rhs_contracting), (_, rhs_batch) = self.dimension_numbers
        shared = math.prod(self.rhs.shape[d] for d in (*rhs_contracting, *rhs_batch))
        return 2 * math.prod(self.lhs.shape) * math.prod(self.rhs.shape) // shared


def _dot_generals(jaxpr: jax.extend.core.Jaxpr) -> Iterator[jax.extend.core.JaxprEqn]:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn
        for inner in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _dot_generals(inner)


def _primitives(jaxpr: jax.extend.core.Jaxpr) -> Iterator[str]:
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name
        for inner in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _primitives(inner)


def step_products(arch: Architecture, spec: data.DataSpec) -> list[Product] | None:
    """Every matrix product of one training step, as traced: the `dot_general`s of the jaxpr of a
    one-step epoch (`epoch.make_train_epoch`), forward and backward, including those the matmul
    lowering of convolutions makes (`autoencoders/conv.py`, CPU). Each counts once, as the step's
    body runs it once (the benchmarked models have no loop inside a step). None where the step
    has convolutions that are not products (XLA's own: GPU, TPU, AUTOENCODERS_CONV_LOWERING=xla)."""
    jm = JaxModel.build(arch, spec, 1)
    state = jax.eval_shape(jm.make_state, jax.random.key(0))
    one_step, images, labels = jm.one_step()
    traced = jax.make_jaxpr(one_step)(state, images, labels, jax.random.key(0))
    if "conv_general_dilated" in set(_primitives(traced.jaxpr)):
        return None
    return jaxpr_products(traced.jaxpr)


def jaxpr_products(jaxpr: jax.extend.core.Jaxpr) -> list[Product]:
    """The `dot_general`s of `jaxpr` (and of the jaxprs inside it), in order."""
    index: dict[int, int] = {}  # id of a jaxpr variable -> its operand index
    products = []
    for eqn in _dot_generals(jaxpr):
        lhs, rhs = (jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars)
        ids = tuple(index.setdefault(id(v), len(index)) for v in eqn.invars)
        products.append(Product(lhs, rhs, ids, eqn.params["dimension_numbers"]))
    return products


def random_operands(products: Sequence[Product]) -> dict[int, jax.Array]:
    """Normal random operands of `products` by operand index, one array per index (products that
    share an input in the traced program share it here too)."""
    shapes = {i: x for p in products for i, x in zip(p.operands, (p.lhs, p.rhs), strict=True)}
    keys = jax.random.split(jax.random.key(0), len(shapes))
    return {i: jax.random.normal(keys[i], x.shape, x.dtype) for i, x in shapes.items()}


def step_matmul_loop(
    arch: Architecture,
    spec: data.DataSpec,
    steps: int,
    compiler_options: Mapping[str, str] | None = None,
) -> tuple[Callable[[], None], int] | None:
    """(a call of `steps` steps, FLOPs per step) of a training step's matrix products alone
    (`step_products`: dense layers and, on CPU, convolutions as products; forward, input and
    weight gradients), in one jitted loop. As in the step, products that share an input share
    one array; each product's smaller input is multiplied by the loop's carry (once per step,
    however many products share it), so none is hoisted out of the loop. None where
    `step_products` is."""
    products = step_products(arch, spec)
    if products is None:
        return None
    operands = random_operands(products)
    scaled = {p.operands[0] if p.lhs.size <= p.rhs.size else p.operands[1] for p in products}

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def loop(operands: dict[int, jax.Array]) -> jax.Array:
        def step(carry: jax.Array, _: None) -> tuple[jax.Array, None]:
            scale = 1.0 + 1e-30 * carry
            inputs = {i: x * scale if i in scaled else x for i, x in operands.items()}
            total = carry
            for p in products:
                lhs, rhs = (inputs[i] for i in p.operands)
                total += jnp.sum(jax.lax.dot_general(lhs, rhs, p.dimension_numbers))
            return total * 1e-30, None

        return jax.lax.scan(step, jnp.zeros(()), None, length=steps)[0]

    return lambda: loop(operands).block_until_ready(), sum(p.flops for p in products)


def optimizer_step_loop(
    arch: Architecture,
    spec: data.DataSpec,
    steps: int,
    compiler_options: Mapping[str, str] | None = None,
) -> Callable[[], None]:
    """A call of `steps` optimizer updates alone (the config's optax Adam on the model's
    parameters, with fixed gradients) in one jitted loop."""
    jm = JaxModel.build(arch, spec, steps)
    params = jm.init_state(jax.random.key(0)).params
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)

    @functools.partial(jax.jit, donate_argnums=0, compiler_options=compiler_options)
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

    return call


@dataclasses.dataclass(frozen=True)
class StepSplit:
    """Seconds per step of a training step and of its parts alone, timed in turn (`step_split`)."""

    step_s: float
    matmul_s: float | None  # None where the step has no products to time (`step_products`)
    matmul_flops: int | None
    optimizer_s: float


def step_split(
    arch: Architecture,
    bench: BenchData,
    steps: int,
    repeats: int,
    train_epoch: Callable[[], None],
    compiler_options: Mapping[str, str] | None = None,
) -> StepSplit:
    """A training step, its matrix products alone and its optimizer update alone, each `steps`
    steps in one jitted loop, timed in turn call by call (`timing.interleaved_best_seconds`), so
    that the CPU's clock, which drifts over seconds to minutes, is shared by all three; the best
    of `repeats` rounds each. `train_epoch` calls the real compiled epoch of `steps` steps
    (`measure.bench_jax_training`'s `TrainResult.call`), its state threaded through the calls;
    the parts are compiled with its `compiler_options` (`cpu_matmuls`)."""
    optimizer = optimizer_step_loop(arch, bench.spec, steps, compiler_options)
    loops = {"step": train_epoch, "optimizer": optimizer}
    matmuls = step_matmul_loop(arch, bench.spec, steps, compiler_options)
    if matmuls is not None:
        loops["matmuls"] = matmuls[0]
    best = timing.interleaved_best_seconds(loops, repeats)
    return StepSplit(
        best["step"] / steps,
        None if matmuls is None else best["matmuls"] / steps,
        None if matmuls is None else matmuls[1],
        best["optimizer"] / steps,
    )


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
    # Pixels on the minor axis, as the decoder's product writes them, moved behind the parameter
    # axis inside the part. Held as (..., pixels, 1) instead, the Bernoulli term alone cost more
    # than inside the whole block (IWAE-paper VAE, 8 × 500: 7.88 ms in the record of commit
    # e685ea3, 3.53 ms pixel-minor in the next), which left 'the rest' negative.
    logits = jax.random.normal(next(keys), (examples, samples, num_params, pixels))
    targets = x.reshape(examples, 1, pixels)

    def likelihood(inputs: Any, scale: jax.Array, key: jax.Array) -> jax.Array:
        logits, targets = inputs
        per_pixel = jnp.moveaxis(logits * scale, -2, -1)  # (examples, samples, pixels, params)
        return jnp.sum(model.likelihood.log_prob(per_pixel, targets), axis=-1)

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
