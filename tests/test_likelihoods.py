"""Each likelihood's log-probability against scipy or a closed form, and the compatibility rules."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import integrate, stats

from autoencoders import likelihoods

RNG = np.random.default_rng(0)


def test_bernoulli_matches_scipy():
    logits = RNG.normal(size=50) * 3
    x = RNG.integers(0, 2, size=50).astype(np.float32)
    expected = stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-logits)))
    np.testing.assert_allclose(
        likelihoods.bernoulli_log_prob(logits, x), expected, rtol=1e-5, atol=1e-6
    )


def test_bernoulli_is_stable_for_large_logits():
    out = likelihoods.bernoulli_log_prob(jnp.array([200.0, -200.0]), jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(out, [0.0, 0.0], atol=1e-6)


def test_gaussian_matches_scipy():
    mean, log_scale, x = RNG.normal(size=(3, 40))
    expected = stats.norm.logpdf(x, loc=mean, scale=np.exp(log_scale))
    np.testing.assert_allclose(
        likelihoods.gaussian_log_prob(mean, log_scale, x), expected, rtol=1e-5
    )


@pytest.mark.parametrize("logit", [-30.0, -5.0, -0.3, -1e-3, 0.0, 2e-3, 0.05, 1.0, 8.0])
def test_continuous_bernoulli_normalizer_closed_form_and_integrates_to_one(logit):
    lam = 1 / (1 + math.exp(-logit))
    if abs(lam - 0.5) > 1e-3:
        closed = math.log(2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam))
    else:
        closed = math.log(2.0)
    np.testing.assert_allclose(
        likelihoods.continuous_bernoulli_log_normalizer(jnp.float32(logit)),
        closed,
        rtol=1e-4,
        atol=1e-5,
    )
    if abs(logit) < 20:  # the density is too peaked for quad beyond this
        density = lambda x: math.exp(  # noqa: E731
            float(likelihoods.continuous_bernoulli_log_prob(logit, x))
        )
        total, _ = integrate.quad(density, 0.0, 1.0)
        assert total == pytest.approx(1.0, abs=1e-4)


def test_continuous_bernoulli_gradient_is_finite_at_half():
    grad = jax.grad(lambda logit: likelihoods.continuous_bernoulli_log_prob(logit, 0.3))(0.0)
    assert np.isfinite(grad)


@pytest.mark.parametrize("logit", [-4.0, -0.5, 0.0, 1e-4, 2.0])
def test_continuous_bernoulli_mean_and_sampler(logit):
    def density(x):
        return math.exp(float(likelihoods.continuous_bernoulli_log_prob(logit, x)))

    numeric_mean, _ = integrate.quad(lambda x: x * density(x), 0.0, 1.0)
    cb = likelihoods.ContinuousBernoulli()
    params = jnp.full((20000, 1), logit)
    assert float(cb.mean(params[:1])[0]) == pytest.approx(numeric_mean, abs=1e-4)
    samples = cb.sample(jax.random.key(0), params)
    assert samples.min() >= 0 and samples.max() <= 1
    assert float(samples.mean()) == pytest.approx(numeric_mean, abs=0.01)


def test_discretized_logistic_matches_scipy_and_sums_to_one():
    levels = 256
    mean, log_scale = 0.37, math.log(0.05)
    grid = np.arange(levels) / (levels - 1)
    log_p = likelihoods.discretized_logistic_log_prob(
        jnp.full(levels, mean), jnp.full(levels, log_scale), jnp.asarray(grid), levels
    )
    half = 0.5 / (levels - 1)
    cdf = lambda v: stats.logistic.cdf(v, loc=mean, scale=math.exp(log_scale))  # noqa: E731
    expected = cdf(grid + half) - cdf(grid - half)
    expected[0], expected[-1] = cdf(half), 1 - cdf(1 - half)
    np.testing.assert_allclose(np.exp(log_p), expected, rtol=1e-3, atol=1e-7)
    assert float(jnp.sum(jnp.exp(log_p))) == pytest.approx(1.0, abs=1e-4)


def test_gaussian_learned_scale_is_bounded_below():
    g = likelihoods.Gaussian(learn_sigma=True, min_sigma=1e-3)
    params = jnp.array([[0.5, -1e4]])
    assert g.num_params == 2
    assert float(jnp.exp(g.log_scale(params))[0]) == pytest.approx(1e-3, rel=1e-3)


def _cfg(**kw):
    base = dict(name="bernoulli", sigma=0.1, learn_sigma=False, min_sigma=1e-3)
    base.update(kw)
    return ml_collections.ConfigDict(base)


def test_compatibility_rules():
    assert likelihoods.check_compatible(_cfg(), "binary", 2).is_log_likelihood
    grey = likelihoods.check_compatible(_cfg(), "grey", 256)
    assert not grey.is_log_likelihood and "cross-entropy" in grey.description
    with pytest.raises(ValueError, match="learn_sigma"):
        likelihoods.check_compatible(_cfg(name="gaussian", learn_sigma=True), "grey", 256)
    with pytest.raises(ValueError, match="dequantize"):
        likelihoods.check_compatible(_cfg(name="discretized_logistic"), "dequantized", 256)
    with pytest.raises(ValueError, match="must be one of"):
        likelihoods.check_compatible(_cfg(name="poisson"), "grey", 256)


@pytest.mark.parametrize(
    "likelihood",
    [
        likelihoods.Bernoulli(),
        likelihoods.Gaussian(sigma=0.1),
        likelihoods.Gaussian(learn_sigma=True),
        likelihoods.DiscretizedLogistic(),
    ],
)
def test_params_at_mean_have_that_mean(likelihood):
    """The data-mean output bias (`network.output_bias='data_mean'`) starts each pixel's
    likelihood at the data's mean, clipped to [0.001, 0.999] for the Bernoulli."""
    mean = np.array([[0.0, 0.0005, 0.2], [0.5, 0.9, 1.0]], np.float32)
    params = likelihood.params_at_mean(mean)
    assert params.shape == (2, 3, likelihood.num_params)
    expected = np.clip(mean, 1e-3, 1 - 1e-3) if likelihood.name == "bernoulli" else mean
    np.testing.assert_allclose(likelihood.mean(jnp.asarray(params)), expected, rtol=1e-5)
    np.testing.assert_array_equal(params[..., 1:], 0.0)  # the scales as a zero bias leaves them


def test_params_at_mean_refused_where_the_mean_has_no_inverse():
    with pytest.raises(ValueError, match="output_bias='data_mean'.*'continuous_bernoulli'"):
        likelihoods.ContinuousBernoulli().params_at_mean(np.full((2,), 0.3))
