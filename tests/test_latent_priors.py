"""The adversarial AE's priors: moments, support, label-conditioned parts, mixture density."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from autoencoders import priors

NUM = 100_000


def _moments(z):
    z = np.asarray(z)
    return z.mean(axis=0), np.cov(z, rowvar=False)


def _angles(z):
    """Angle of the first two coordinates in [0, 2π)."""
    z = np.asarray(z)
    return np.mod(np.arctan2(z[:, 1], z[:, 0]), 2 * np.pi)


def test_standard_normal_sectors_keep_n01_and_own_their_angles():
    prior = priors.StandardNormal(3, num_classes=10)
    labels = jax.random.randint(jax.random.key(1), (NUM,), 0, 10)
    z = prior.sample(jax.random.key(0), NUM, labels)
    mean, cov = _moments(z)
    np.testing.assert_allclose(mean, 0.0, atol=0.02)
    np.testing.assert_allclose(cov, np.eye(3), atol=0.03)
    sector = np.floor(_angles(z) / (2 * np.pi / 10)).astype(int)
    np.testing.assert_array_equal(sector, np.asarray(labels))
    # The radius of the first two coordinates is Rayleigh(1), as for an unconditioned draw.
    radius = np.linalg.norm(np.asarray(z)[:, :2], axis=1)
    assert stats.kstest(radius, stats.rayleigh.cdf).pvalue > 1e-3


def test_standard_normal_without_labels_is_unchanged():
    z = priors.StandardNormal(2).sample(jax.random.key(0), 5)
    np.testing.assert_array_equal(z, jax.random.normal(jax.random.key(0), (5, 2)))


def test_mixture_moments_match_the_stated_formula():
    prior = priors.GaussianMixture2D(
        num_components=10, radius=1.4, radial_std=0.5, tangential_std=0.1
    )
    mean, cov = _moments(prior.sample(jax.random.key(0), NUM))
    np.testing.assert_allclose(mean, 0.0, atol=0.02)
    np.testing.assert_allclose(cov, (1.4**2 + 0.5**2 + 0.1**2) / 2 * np.eye(2), atol=0.02)


def test_mixture_label_conditioned_draws_land_in_their_component():
    prior = priors.GaussianMixture2D()
    labels = jnp.arange(NUM) % 10
    z = np.asarray(prior.sample(jax.random.key(0), NUM, labels))
    for k in range(10):
        own = z[np.asarray(labels) == k]
        # Component k in its own frame: mean at radius 1.4 along angle 2πk/10, stds 0.5 and 0.1.
        theta = 2 * math.pi * k / 10
        radial = own @ np.array([math.cos(theta), math.sin(theta)])
        tangential = own @ np.array([-math.sin(theta), math.cos(theta)])
        np.testing.assert_allclose([radial.mean(), radial.std()], [1.4, 0.5], atol=0.02)
        np.testing.assert_allclose([tangential.mean(), tangential.std()], [0.0, 0.1], atol=0.01)
    # Unlabelled (−1) draws come from the whole mixture: every component about equally often.
    unlabelled = prior.sample(jax.random.key(1), NUM, jnp.full((NUM,), -1))
    nearest = np.argmax(np.asarray(prior.component_log_probs(unlabelled)), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=10) / NUM, 0.1, atol=0.01)


def test_mixture_log_prob_matches_scipy_and_integrates_to_one():
    prior = priors.GaussianMixture2D(
        num_components=10, radius=1.4, radial_std=0.5, tangential_std=0.1
    )
    points = np.random.default_rng(0).normal(scale=1.5, size=(50, 2))
    density = np.zeros(len(points))
    for k in range(10):
        theta = 2 * math.pi * k / 10
        rotation = np.array(
            [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
        )
        cov = rotation @ np.diag([0.5**2, 0.1**2]) @ rotation.T
        mean = 1.4 * np.array([math.cos(theta), math.sin(theta)])
        density += stats.multivariate_normal(mean, cov).pdf(points) / 10
    np.testing.assert_allclose(prior.log_prob(jnp.asarray(points)), np.log(density), rtol=1e-4)
    grid = np.linspace(-4, 4, 401)
    cells = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    mass = np.exp(np.asarray(prior.log_prob(jnp.asarray(cells)))).sum() * (grid[1] - grid[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_swiss_roll_support_and_segments():
    prior = priors.SwissRoll2D(num_segments=10)
    z = np.asarray(prior.sample(jax.random.key(0), NUM))
    radius = np.linalg.norm(z, axis=1)
    assert radius.max() <= 3.0 + 1e-5
    # On the spiral: the angle is 4π·(r/3) (mod 2π).
    np.testing.assert_allclose(np.cos(_angles(z) - 4 * np.pi * radius / 3), 1.0, atol=1e-4)
    # r = 3√u with u ~ U[0, 1): (r/3)² is uniform, so E[r²] = 4.5.
    assert stats.kstest((radius / 3) ** 2, "uniform").pvalue > 1e-3
    labels = jnp.arange(NUM) % 10
    radius = np.linalg.norm(np.asarray(prior.sample(jax.random.key(1), NUM, labels)), axis=1)
    for k in range(10):
        own = radius[np.asarray(labels) == k]
        assert own.min() >= 3 * math.sqrt(k / 10) - 1e-5
        assert own.max() <= 3 * math.sqrt((k + 1) / 10) + 1e-5


@pytest.mark.parametrize("prior", [priors.GaussianMixture2D(), priors.SwissRoll2D()])
def test_part_of_finds_the_class_a_labelled_draw_came_from(prior):
    labels = np.arange(10_000) % 10
    z = prior.sample(jax.random.key(2), len(labels), jnp.asarray(labels))
    found = np.asarray(prior.part_of(z))
    # The roll's segments touch only at their ends; the mixture's components overlap a little
    # near the centre (radial std 0.5 at radius 1.4). Measured: 1.0 and 0.984.
    assert np.mean(found == labels) > (0.999 if isinstance(prior, priors.SwissRoll2D) else 0.95)
    # Every class is found, so the test would catch a constant answer.
    assert set(found.tolist()) == set(range(10))


def test_two_dimensional_priors_refuse_other_sizes():
    with pytest.raises(ValueError, match="latent_dim=2"):
        priors.make_latent_prior("mixture", 5, 10)
    with pytest.raises(ValueError, match="must be one of"):
        priors.make_latent_prior("uniform", 2, 10)
