"""Density: a model's test log-likelihood by importance sampling, and its active latent units.

For a `latent_variable` model, log p(x) is estimated by the IWAE estimator (Burda et al. 2016),
log p(x) ≈ logsumexp_k log w_k − log K with w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z | x)
(`importance_sampled_log_likelihood`), reported beside the per-image terms of the model (the ELBO
among them) and the active units, Var_x E_q[z_j | x] > 0.01 (`active_units`); `density` gives all
of it for eval.json. Deterministic autoencoders claim no likelihood: only their reconstruction
terms are reported. Everything runs on `map_examples`, one compiled map of a model function over
the examples that gives example i the key fold_in(rng, i), so results depend neither on how many
examples are vectorised at once nor on block sizes; it also gives the other parts of an evaluation
every example's code (`encode`) and squared reconstruction error (`squared_errors`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import models
from autoencoders.progress import Progress
from autoencoders.quantities import SALT_DENSITY, SALT_TERMS, per_image, subset_indices

if TYPE_CHECKING:
    from autoencoders.evaluation import Options

Array = jax.Array
Params = Any

SAMPLE_CHUNK = 500  # importance samples drawn at once per example
# Examples vectorised at once; memory ∝ EXAMPLE_BATCH·SAMPLE_CHUNK. ~4000 decoder rows per block
# keep its activations in cache: faster on a CPU than 32 examples (16000 rows); compare
# `python -m benchmarks.run --benchmarks=is_eval --is_example_batch=32` with the default.
EXAMPLE_BATCH = 8


# ---------------------------------------------------------------------------------------------
# Per-example maps of model functions: one jit, no Python loop over examples
# ---------------------------------------------------------------------------------------------


def map_examples(
    fn: Callable[[Params, dict[str, Array], Array], Any],
    params: Params,
    x: Array,
    y: Array,
    rng: Array,
    batch_size: int,
    block_size: int = 0,
    progress: str = "",
) -> Any:
    """fn(params, batch of one, key) for every example, `batch_size` examples vectorised at once.

    Example i gets the key fold_in(rng, i), so the result depends neither on `batch_size` nor on
    `block_size`: the examples are handed to the compiled map `block_size` at a time (0 = all at
    once), with a progress bar (`progress`, its description; a log line per block where stderr
    is not a terminal) for long maps such as k = 5000 importance samples.
    """
    n = x.shape[0]
    block_size = block_size or n
    outputs = []
    bar = Progress(n, progress, "images", every=0, log=logging.info) if progress else None
    with bar or contextlib.nullcontext():
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            indices = jnp.arange(start, stop)
            outputs.append(
                _map_examples(fn, params, x[start:stop], y[start:stop], indices, rng, batch_size)
            )
            if progress:
                jax.block_until_ready(outputs[-1])
                bar.update(stop - start)
    return jax.tree.map(lambda *blocks: jnp.concatenate(blocks), *outputs)


@functools.partial(jax.jit, static_argnums=(0, 6))
def _map_examples(fn, params, x, y, indices, rng, batch_size):
    def one(args):
        x_i, y_i, i = args
        out = fn(params, {"x": x_i[None], "y": y_i[None]}, jax.random.fold_in(rng, i))
        return jax.tree.map(lambda a: a[0], out)

    return jax.lax.map(one, (x, y, indices), batch_size=min(batch_size, x.shape[0]))


def encode(model: models.Model, params: Params, x: Array, y: Array, batch_size: int = 500):
    """Codes of every example (`model.codes`), as numpy (N, latent_dim)."""
    return _deterministic_map(_encode_one, model, params, x, y, batch_size)


def squared_errors(
    model: models.Model, params: Params, x: Array, y: Array, batch_size: int = 500
) -> np.ndarray:
    """(x − x̂)² summed over pixels per example, x̂ = `model.reconstruct`; numpy (N,)."""
    return _deterministic_map(_sq_err_one, model, params, x, y, batch_size)


def _deterministic_map(fn, model, params, x, y, batch_size) -> np.ndarray:
    """fn(model, params, batch, key) over every example, as numpy; fn draws nothing."""
    return np.asarray(map_examples(_bound(fn, model), params, x, y, jax.random.key(0), batch_size))


@functools.lru_cache(maxsize=64)
def _bound(fn: Callable, model: models.Model) -> Callable:
    """functools.partial(fn, model), the same object for the same arguments: `_map_examples`
    is jitted with the function as a static argument, so a fresh partial would recompile."""
    return functools.partial(fn, model)


def _encode_one(model, params, batch, rng):
    del rng
    return model.codes(params, batch["x"], batch["y"])[0]


def _sq_err_one(model, params, batch, rng):
    del rng
    x = batch["x"]
    return jnp.sum((model.reconstruct(params, x, batch["y"]) - x) ** 2, axis=(1, 2, 3))


# ---------------------------------------------------------------------------------------------
# Importance sampling
# ---------------------------------------------------------------------------------------------


def importance_sampled_log_likelihood(
    model: models.Model,
    params: Params,
    x: Array,
    y: Array,
    rng: Array,
    num_samples: int,
    ks: Sequence[int] = (),
    sample_chunk: int = SAMPLE_CHUNK,
    example_batch: int = EXAMPLE_BATCH,
    block_size: int = 1000,
) -> dict[int, np.ndarray]:
    """IWAE estimates of log p(x) per example, in nats per image, for k in `ks` and `num_samples`.

    Samples are drawn `sample_chunk` at a time and folded into a running logsumexp (memory does
    not grow with k); the estimate for a smaller k uses the first k of the same samples. Each
    estimate is a lower bound on log p(x) in expectation, rising to it as k grows.

    Returns {k: (N,) array}.
    """
    ks = tuple(sorted({int(k) for k in ks if 0 < k < num_samples} | {num_samples}))
    one = _importance_sampler(model, ks, min(sample_chunk, num_samples))
    progress = f"importance sampling, k = {num_samples}"
    estimates = map_examples(one, params, x, y, rng, example_batch, block_size, progress)
    estimates = np.asarray(estimates)
    return {k: estimates[:, i] for i, k in enumerate(ks)}


@functools.lru_cache(maxsize=16)
def _importance_sampler(model: models.Model, ks: tuple[int, ...], chunk: int) -> Callable:
    """Per-example IWAE estimates for every k in `ks` (the largest is the sample count).

    Cached, so repeated evaluations reuse one compiled program (the function is a static jit
    argument of `_map_examples`).
    """
    num_chunks = -(-ks[-1] // chunk)
    ks_arr = jnp.asarray(ks)

    def one(params, batch, key):
        def body(acc, c):
            log_w = model.log_importance_weights(params, batch, jax.random.fold_in(key, c), chunk)
            index = c * chunk + jnp.arange(chunk)
            # Row j keeps the samples that count towards k_j (index < k_j), so one pass over
            # the samples gives every k; samples past num_samples are dropped the same way.
            masked = jnp.where(index[None, :, None] < ks_arr[:, None, None], log_w[None], -jnp.inf)
            return jnp.logaddexp(acc, jax.nn.logsumexp(masked, axis=1)), None

        acc0 = jnp.full((len(ks), batch["x"].shape[0]), -jnp.inf)
        acc, _ = jax.lax.scan(body, acc0, jnp.arange(num_chunks))
        return (acc - jnp.log(ks_arr.astype(jnp.float32))[:, None]).T  # (B, len(ks))

    return one


def active_units(latent_means: np.ndarray, threshold: float = 0.01) -> dict[str, Any]:
    """Units whose posterior mean varies over the data: Var_x E_q[z_j | x] > threshold."""
    variances = np.var(np.asarray(latent_means, np.float64), axis=0)
    return {
        "count": int(np.sum(variances > threshold)),
        "of": int(variances.size),
        "threshold": threshold,
        "variances": [float(v) for v in variances],
        "unit": "latent dimensions with Var_x E_q[z_j|x] > threshold (variance in latent units²)",
    }


# ---------------------------------------------------------------------------------------------
# The density part of eval.json
# ---------------------------------------------------------------------------------------------


def density(
    model: models.Model, params: Params, x: Array, y: Array, rng: Array, options: Options
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(summary, per-image values). The summary: test log-likelihood (IWAE, k =
    options.num_samples) with its standard error, the ELBO, the other per-image terms, and active
    units; for deterministic AEs the terms only. The per-image values: `index` (the test images
    of the importance-sampled estimate, `options.density_examples` of them, all for deterministic
    AEs) and, on those images, each term and each estimate by name (`nll`; `nll_k<k>` for the
    other report ks), so two models evaluated with the same options can be compared image by
    image."""
    out: dict[str, Any] = {"recon_units": model.units.description}
    terms = map_examples(
        model.eval_terms, params, x, y, jax.random.fold_in(rng, SALT_TERMS), options.example_batch
    )
    for name, values in sorted(terms.items()):
        if name != "loss":  # the training objective; its parts are reported by name
            out[name] = per_image(values, model.term_unit(name))
    subset = np.arange(x.shape[0])
    if model.latent_variable:
        subset = subset_indices(x.shape[0], options.density_examples, options.seed)
    each: dict[str, np.ndarray] = {"index": subset}
    each.update({name: np.asarray(v)[subset] for name, v in terms.items() if name != "loss"})
    if not model.latent_variable:
        out["log_likelihood"] = (
            "not estimated: a deterministic autoencoder defines no density p(x); "
            "reconstruction terms only"
        )
        return out, each

    estimates = importance_sampled_log_likelihood(
        model,
        params,
        x[subset],
        y[subset],
        jax.random.fold_in(rng, SALT_DENSITY),
        options.num_samples,
        options.report_ks,
        options.sample_chunk,
        options.example_batch,
    )
    # A Bernoulli on grey levels has no normaliser over [0, 1]: the IS estimate of its "marginal"
    # is a cross-entropy too, and is named as one.
    name = "nll" if model.units.is_log_likelihood else "marginal_xent"
    estimated = "−log p(x)"
    if model.conditional:  # the label is given: the number is −log p(x | y)
        name, estimated = f"conditional_{name}", "−log p(x | y), given the label"
    unit = f"{model.units.description}; IWAE estimate of {estimated}"
    out[name] = per_image(-estimates[options.num_samples], unit)
    out[name]["num_samples"] = options.num_samples
    # The same images and samples for every k; k = 1 is a one-sample ELBO estimate on them.
    out[f"{name}_by_k"] = {
        str(k): per_image(-v, f"{unit} from the first k of the samples")
        for k, v in estimates.items()
    }
    each[name] = -np.asarray(estimates[options.num_samples], np.float64)
    each.update(  # k = num_samples is `name` itself
        {
            f"{name}_k{k}": -np.asarray(v, np.float64)
            for k, v in estimates.items()
            if k != options.num_samples
        }
    )
    out["active_units"] = active_units(encode(model, params, x, y), options.active_threshold)
    return out, each
