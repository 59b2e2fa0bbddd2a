"""Priors p(z) and the Gaussian posterior algebra VAEs need.

Log-densities are summed over latent dimensions (nats per example).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array


def diag_gaussian_log_prob(z: Array, mean: Array, log_var: Array) -> Array:
    """log N(z | mean, diag(exp(log_var))), summed over the last axis."""
    return -0.5 * jnp.sum(
        (z - mean) ** 2 * jnp.exp(-log_var) + log_var + math.log(2 * math.pi), axis=-1
    )


def kl_diag_gaussian_to_standard_normal(mean: Array, log_var: Array) -> Array:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) in closed form, summed over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)


def reparameterize(rng: Array, mean: Array, log_var: Array) -> Array:
    """z = mean + σ ε with ε ~ N(0, I): a sample whose gradient flows to mean and log_var."""
    return mean + jnp.exp(0.5 * log_var) * jax.random.normal(rng, mean.shape, mean.dtype)


class StandardNormal:
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        self.latent_dim = latent_dim

    def sample(self, rng: Array, num: int) -> Array:
        return jax.random.normal(rng, (num, self.latent_dim))

    def log_prob(self, z: Array) -> Array:
        return -0.5 * jnp.sum(z**2 + math.log(2 * math.pi), axis=-1)
