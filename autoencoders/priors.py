"""Priors p(z) and the Gaussian posterior algebra VAEs need.

Log-densities are summed over latent dimensions (nats per example).
"""

from __future__ import annotations

import math
from typing import Protocol

import jax
import jax.numpy as jnp

Array = jax.Array


class Prior(Protocol):
    """A distribution over codes that can be sampled, optionally by class (see each prior)."""

    def sample(self, rng: Array, num: int, labels: Array | None = None) -> Array: ...


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
    """p(z) = N(0, I).

    Label-conditioned samples (the adversarial AE's supervised prior): class k of `num_classes`
    owns the angular sector [2πk/K, 2π(k+1)/K) of the first two coordinates, so the classes
    together are still N(0, I) (mean 0, covariance I).
    """

    def __init__(self, latent_dim: int, num_classes: int = 10):
        self.latent_dim = latent_dim
        self.num_classes = num_classes

    def sample(self, rng: Array, num: int, labels: Array | None = None) -> Array:
        """(num, latent_dim) draws; `labels` (num,) ints pick each draw's sector (−1: any)."""
        if labels is None:
            return jax.random.normal(rng, (num, self.latent_dim))
        if self.latent_dim < 2:
            raise ValueError("Label-conditioned N(0, I) samples need latent_dim >= 2 (sectors).")
        rest_rng, radius_rng, angle_rng, class_rng = jax.random.split(rng, 4)
        k = class_or_uniform(class_rng, labels, self.num_classes)
        # |z| of a 2-D standard normal is Rayleigh(1), independent of its uniform angle.
        radius = jnp.sqrt(-2.0 * jnp.log1p(-jax.random.uniform(radius_rng, (num,))))
        angle = 2 * math.pi * (k + jax.random.uniform(angle_rng, (num,))) / self.num_classes
        plane = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)
        rest = jax.random.normal(rest_rng, (num, self.latent_dim - 2))
        return jnp.concatenate([plane, rest], axis=-1)

    def log_prob(self, z: Array) -> Array:
        return -0.5 * jnp.sum(z**2 + math.log(2 * math.pi), axis=-1)


# ---------------------------------------------------------------------------------------------
# Priors for the adversarial autoencoder (Makhzani et al. 2015): anything that can be sampled.
# `labels` (num,) ints tie each draw to its class's part of the prior; −1 draws from all of it.
# ---------------------------------------------------------------------------------------------


def class_or_uniform(rng: Array, labels: Array, num_classes: int) -> Array:
    """labels where known (>= 0), else a uniformly drawn class: which part of a prior to sample."""
    uniform = jax.random.randint(rng, labels.shape, 0, num_classes)
    return jnp.where(labels >= 0, labels, uniform)


class GaussianMixture2D:
    """A mixture of K equally weighted 2-D Gaussians on a circle (the AAE paper's figures).

    Component k has mean radius·(cos θ_k, sin θ_k), θ_k = 2πk/K, and standard deviation
    `radial_std` along the radius and `tangential_std` across it (the code of the lecture this
    project follows, see README: radius 1.4, 0.5 and 0.1). For K >= 3 the mixture has mean 0 and
    covariance ((radius² + radial_std² + tangential_std²) / 2)·I. Class k owns component k.
    """

    latent_dim = 2

    def __init__(
        self,
        num_components: int = 10,
        radius: float = 1.4,
        radial_std: float = 0.5,
        tangential_std: float = 0.1,
    ):
        self.num_components = num_components
        self.radius = radius
        self.stds = jnp.array([radial_std, tangential_std])
        angles = 2 * math.pi * jnp.arange(num_components) / num_components
        cos, sin = jnp.cos(angles), jnp.sin(angles)
        self.means = radius * jnp.stack([cos, sin], axis=-1)  # (K, 2)
        # Columns: the radial and the tangential unit vector of each component.
        self.rotations = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)

    def sample(self, rng: Array, num: int, labels: Array | None = None) -> Array:
        class_rng, noise_rng = jax.random.split(rng)
        if labels is None:
            labels = jnp.full((num,), -1, jnp.int32)
        k = class_or_uniform(class_rng, labels, self.num_components)
        noise = jax.random.normal(noise_rng, (num, 2)) * self.stds
        return self.means[k] + jnp.einsum("nij,nj->ni", self.rotations[k], noise)

    def component_log_probs(self, z: Array) -> Array:
        """log N(z | component k) for every k: shape (..., K)."""
        offset = z[..., None, :] - self.means  # (..., K, 2)
        local = jnp.einsum("kji,...kj->...ki", self.rotations, offset)  # radial, tangential
        return diag_gaussian_log_prob(local, 0.0, 2 * jnp.log(self.stds))

    def part_of(self, z: Array) -> Array:
        """The class whose part of the prior each code is in: its most likely component."""
        return jnp.argmax(self.component_log_probs(z), axis=-1)

    def log_prob(self, z: Array) -> Array:
        return jax.nn.logsumexp(self.component_log_probs(z), axis=-1) - math.log(
            self.num_components
        )


class SwissRoll2D:
    """The swiss roll of the AAE paper's figures, as in the lecture's code: u ~ U[0, 1),
    z = 3√u (cos 4π√u, sin 4π√u), a spiral from the origin out to radius 3 (two turns).

    Class k of K owns the segment u ∈ [k/K, (k+1)/K), radii [3√(k/K), 3√((k+1)/K)). The
    distribution lies on a curve, so it has no density (no `log_prob`).
    """

    latent_dim = 2

    def __init__(self, num_segments: int = 10):
        self.num_segments = num_segments

    @staticmethod
    def point(u: Array) -> Array:
        """The roll at positions u ∈ [0, 1): shape (..., 2)."""
        radius, angle = 3.0 * jnp.sqrt(u), 4 * math.pi * jnp.sqrt(u)
        return radius[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1)

    def sample(self, rng: Array, num: int, labels: Array | None = None) -> Array:
        class_rng, position_rng = jax.random.split(rng)
        if labels is None:
            u = jax.random.uniform(position_rng, (num,))
        else:
            k = class_or_uniform(class_rng, labels, self.num_segments)
            u = (k + jax.random.uniform(position_rng, (num,))) / self.num_segments
        return self.point(u)

    def part_of(self, z: Array, grid: int = 2000) -> Array:
        """The segment (class) of the roll's nearest point to each code (n, 2), found among
        `grid` evenly spaced positions u (the roll is ~20 long: ~0.01 between neighbours)."""
        u = (jnp.arange(grid) + 0.5) / grid
        nearest = jnp.argmin(((z[:, None, :] - self.point(u)) ** 2).sum(-1), axis=1)
        return (nearest * self.num_segments) // grid


class CategoricalAndNormal:
    """The clustering AAE's prior over codes [y, z]: y a one-hot draw of a uniform categorical
    over `num_categories` clusters, z ~ N(0, I) of `style_dim` (independent of y). Clusters are
    not classes, so draws are never tied to labels."""

    def __init__(self, num_categories: int, style_dim: int):
        self.num_categories = num_categories
        self.style_dim = style_dim
        self.latent_dim = num_categories + style_dim

    def sample(self, rng: Array, num: int, labels: Array | None = None) -> Array:
        if labels is not None:
            raise ValueError("The clustering prior's categories are not labels: sample no labels.")
        category_rng, style_rng = jax.random.split(rng)
        category = jax.random.randint(category_rng, (num,), 0, self.num_categories)
        style = jax.random.normal(style_rng, (num, self.style_dim))
        return jnp.concatenate([jax.nn.one_hot(category, self.num_categories), style], axis=-1)


LATENT_PRIORS = ("normal", "mixture", "swiss_roll")


def make_latent_prior(name: str, latent_dim: int, num_classes: int):
    """The prior named by `config.model.prior` (`mixture` and `swiss_roll` are 2-D)."""
    if name == "normal":
        return StandardNormal(latent_dim, num_classes)
    if latent_dim != 2:
        raise ValueError(
            f"config.model.prior={name!r} is 2-D: set config.model.latent_dim=2 (got {latent_dim})."
        )
    if name == "mixture":
        return GaussianMixture2D(num_components=num_classes)
    if name == "swiss_roll":
        return SwissRoll2D(num_segments=num_classes)
    raise ValueError(f"config.model.prior={name!r}: must be one of {', '.join(LATENT_PRIORS)}.")
