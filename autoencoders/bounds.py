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


def _value_with_gradient_of(value: jax.Array, surrogate: jax.Array) -> jax.Array:
    """`value` in the forward pass, the gradient of `surrogate` in the backward pass."""
    return jax.lax.stop_gradient(value) + surrogate - jax.lax.stop_gradient(surrogate)


def doubly_reparameterized_bound(
    log_weights_generative: jax.Array, log_weights_inference: jax.Array
) -> jax.Array:
    """L_K with the DReG gradient (Tucker, Lawson, Gu & Maddison 2019, "Doubly reparameterized
    gradient estimators for Monte Carlo objectives"): the same expected gradient as L_K's; for the
    inference network its signal-to-noise ratio grows with K, where the plain gradient's falls
    (Rainforth et al. 2018).

    Both arguments are the same log-weights (K, B) computed two ways, so that each carries one
    part of the gradient: `log_weights_generative` reaches only p's parameters (the samples and
    q held fixed); `log_weights_inference` reaches only q's, through the samples' path z_k(φ),
    with log q evaluated at stopped parameters. With w̃ = softmax_k(log w) held fixed, the
    gradient is Σ_k w̃_k ∇_θ log w_k for p (L_K's own) and Σ_k w̃_k² ∂log w_k/∂z_k ∂z_k/∂φ for q.
    """
    normalised = jax.lax.stop_gradient(jax.nn.softmax(log_weights_generative, axis=0))
    surrogate = jnp.sum(
        normalised * log_weights_generative + normalised**2 * log_weights_inference, axis=0
    )
    return _value_with_gradient_of(importance_weighted_bound(log_weights_generative), surrogate)


def path_derivative_elbo(
    log_weights_generative: jax.Array, log_weights_inference: jax.Array
) -> jax.Array:
    """`mean_elbo` with the path-derivative gradient for q ("sticking the landing", Roeder, Wu &
    Duvenaud 2017): log q's score term, zero in expectation, is dropped, so the gradient for q
    vanishes for every sample once q is the exact posterior. The arguments are as in
    `doubly_reparameterized_bound`; the gradient is (1/K) Σ_k of each one's."""
    surrogate = mean_elbo(log_weights_generative) + mean_elbo(log_weights_inference)
    return _value_with_gradient_of(mean_elbo(log_weights_generative), surrogate)
