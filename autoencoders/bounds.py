"""Monte Carlo bounds on log p(x) from log-weights log w_k = log p(x, z_k) − log q(z_k | x).

`log_weights` has the K samples on axis 0, shape (K, B) (see `VAE.log_importance_weights`); the
results are per example (B,), in nats (per image, for image models).
"""

from __future__ import annotations

import math

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
