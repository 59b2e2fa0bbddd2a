"""Monte Carlo bounds on log p(x) from log-weights log w_k = log p(x, z_k) − log q(z_k | x).

`log_weights` has the K samples on axis 0, shape (K, B) (see `VAE.log_importance_weights`); the
results are per example (B,), in nats (per image, for image models).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def importance_weighted_bound(log_weights: jax.Array) -> jax.Array:
    """L_K = log (1/K) Σ_k w_k = logsumexp_k(log w_k) − log K (Burda et al. 2016, eq. 8).

    A lower bound on log p(x) for z_k ~ q(z|x) independently: L_1 is the ELBO, E[L_K] does not
    decrease with K, and L_K → log p(x) as K → ∞ (the importance-sampled log-likelihood estimate).
    """
    return jax.scipy.special.logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])


def mean_elbo(log_weights: jax.Array) -> jax.Array:
    """(1/K) Σ_k log w_k: the K-sample Monte Carlo estimate of the ELBO (the "VAE with K samples"
    objective of Burda et al.'s Table 1); its expectation is the ELBO for every K."""
    return jnp.mean(log_weights, axis=0)


def reweighted_paths(log_weights_of: Callable[[Any], jax.Array], samples: Any) -> jax.Array:
    """`log_weights_of(samples)`, the (K, B) log-weights of samples whose leaves have leading axes
    (K, B), with DReG's backward pass (Tucker, Lawson, Gu & Maddison 2019, "Doubly
    reparameterized gradient estimators for Monte Carlo objectives"): the gradient reaching
    sample k gets one more factor w̃_k = softmax_k(log w)_k, and what `log_weights_of` closes
    over (p's parameters) its usual gradient. So with log q at stopped parameters, L_K of these
    log-weights gives p's networks L_K's own gradient Σ_k w̃_k ∇_θ log w_k and q's, through the
    samples' path, Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ: for q its signal-to-noise ratio grows with K,
    where the plain gradient's falls (Rainforth et al. 2018). One forward and one backward pass
    through p, as for the plain gradient: the weights are read off the forward pass's values.
    """
    converted, closed_over = jax.closure_convert(log_weights_of, samples)
    return _reweighted_paths(converted, samples, *closed_over)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _reweighted_paths(log_weights_of: Callable, samples: Any, *closed_over: Any) -> jax.Array:
    return log_weights_of(samples, *closed_over)


def _reweighted_paths_forward(log_weights_of: Callable, samples: Any, *closed_over: Any):
    log_weights, backward = jax.vjp(log_weights_of, samples, *closed_over)
    return log_weights, (log_weights, backward)


def _reweighted_paths_backward(log_weights_of: Callable, residuals, g: jax.Array):
    log_weights, backward = residuals
    g_samples, *g_closed_over = backward(g)
    weights = jax.nn.softmax(log_weights, axis=0)

    def reweighted(leaf: jax.Array) -> jax.Array:
        return leaf * weights.reshape(weights.shape + (1,) * (leaf.ndim - weights.ndim))

    return (jax.tree.map(reweighted, g_samples), *g_closed_over)


_reweighted_paths.defvjp(_reweighted_paths_forward, _reweighted_paths_backward)
