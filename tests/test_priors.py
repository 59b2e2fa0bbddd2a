"""Gaussian posterior algebra: closed forms against Monte Carlo and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from autoencoders import priors


def test_analytic_kl_matches_monte_carlo():
    mean = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    log_var = jnp.array([[-1.0, 0.5, 0.0], [1.0, -2.0, 0.2]])
    shape = (200_000, *mean.shape)
    z = priors.reparameterize(
        jax.random.key(0), jnp.broadcast_to(mean, shape), jnp.broadcast_to(log_var, shape)
    )
    log_q = priors.diag_gaussian_log_prob(z, mean, log_var)
    log_p = priors.StandardNormal(3).log_prob(z)
    monte_carlo = jnp.mean(log_q - log_p, axis=0)
    analytic = priors.kl_diag_gaussian_to_standard_normal(mean, log_var)
    np.testing.assert_allclose(monte_carlo, analytic, rtol=0.02)


def test_diag_gaussian_log_prob_matches_scipy():
    rng = np.random.default_rng(1)
    z, mean, log_var = rng.normal(size=(3, 4))
    expected = stats.multivariate_normal.logpdf(z, mean, np.diag(np.exp(log_var)))
    np.testing.assert_allclose(priors.diag_gaussian_log_prob(z, mean, log_var), expected, rtol=1e-5)
