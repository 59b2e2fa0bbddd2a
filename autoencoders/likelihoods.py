"""Observation models p(x | z): the likelihood axis.

A loss is a negative log-likelihood, so choosing a reconstruction loss is choosing a likelihood:
squared error is a Gaussian, cross-entropy a Bernoulli. Each likelihood here says how many numbers
the decoder emits per pixel (`num_params`, the trailing axis of the decoder output), and gives
`log_prob`, `mean` and `sample` for those outputs. Log-probabilities are per pixel, in nats; models
sum them over pixels to get nats per image.

Which (likelihood, data) pairs are allowed, and whether the number is a proper log-likelihood of the
data, is decided once, in `check_compatible`, when the config is read.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# Data kinds after preprocessing (see `data.DataSpec.kind`).
BINARY, GREY, DEQUANTIZED = "binary", "grey", "dequantized"


# ---------------------------------------------------------------------------------------------
# Per-pixel log-probabilities: pure functions, tested against scipy / closed forms.
# ---------------------------------------------------------------------------------------------


@jax.custom_jvp
def softplus(x: Array) -> Array:
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(−|x|)): `jax.nn.softplus`'s formula
    (logaddexp(x, 0)) without its NaN branch, which made the Bernoulli term over twice as slow on
    CPU (docs/benchmarks.md, importance sampling's profile); derivative sigmoid(x), also at 0."""
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (t,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * t


def bernoulli_log_prob(logits: Array, x: Array) -> Array:
    """log Bernoulli(x | sigmoid(logits)); for x in (0, 1), minus the binary cross-entropy."""
    return x * logits - softplus(logits)


def gaussian_log_prob(mean: Array, log_scale: Array, x: Array) -> Array:
    """log N(x | mean, exp(log_scale)^2)."""
    z = (x - mean) * jnp.exp(-log_scale)
    return -0.5 * z**2 - log_scale - 0.5 * math.log(2 * math.pi)


def continuous_bernoulli_log_normalizer(logits: Array) -> Array:
    """log C(λ) of the continuous Bernoulli, λ = sigmoid(logits) (Loaiza-Ganem & Cunningham 2019).

    C(λ) = 2 atanh(1 - 2λ) / (1 - 2λ) = l / tanh(l / 2) for l = logit(λ). Near λ = ½ (l = 0) the
    ratio is 0/0, so a Taylor expansion is used there: log C = log 2 + y²/3 − 7y⁴/90, y = l/2.
    """
    y = 0.5 * logits
    small = jnp.abs(y) < 1e-2
    y_safe = jnp.where(small, 1.0, y)  # keeps the unused branch finite (and its gradient NaN-free)
    exact = jnp.log(jnp.abs(y_safe)) - jnp.log(jnp.abs(jnp.tanh(y_safe)))
    taylor = y**2 / 3.0 - 7.0 * y**4 / 90.0
    return math.log(2.0) + jnp.where(small, taylor, exact)


def continuous_bernoulli_log_prob(logits: Array, x: Array) -> Array:
    """log CB(x | λ) = x log λ + (1 − x) log(1 − λ) + log C(λ), a density on [0, 1]."""
    return bernoulli_log_prob(logits, x) + continuous_bernoulli_log_normalizer(logits)


def continuous_bernoulli_mean(logits: Array) -> Array:
    """E[x] = λ / (2λ − 1) + 1 / (2 atanh(1 − 2λ)); equal to ½ at λ = ½ (λ is not the mean)."""
    lam = jax.nn.sigmoid(logits)
    small = jnp.abs(logits) < 1e-3
    l_safe = jnp.where(small, 1.0, logits)
    lam_safe = jax.nn.sigmoid(l_safe)
    # atanh(1 − 2λ) = −l/2, so the second term is −1/l.
    exact = lam_safe / (2 * lam_safe - 1) - 1.0 / l_safe
    taylor = 0.5 + (lam - 0.5) / 3.0  # first-order expansion around λ = ½
    return jnp.where(small, taylor, exact)


def discretized_logistic_log_prob(
    mean: Array, log_scale: Array, x: Array, num_levels: int
) -> Array:
    """log P(x) for x on the grid {0, 1/(L−1), …, 1}: logistic mass of x's bin (PixelCNN++ style).

    Bins have width 1/(L−1) centred on the levels; the first and last bins extend to ∓∞ so the
    probabilities of the L levels sum to one.
    """
    half_bin = 0.5 / (num_levels - 1)
    inv_s = jnp.exp(-log_scale)
    upper = (x - mean + half_bin) * inv_s
    lower = (x - mean - half_bin) * inv_s
    # log(σ(u) − σ(l)) computed as log σ(u) + log(1 − exp(l − u)) + log σ(−l) − ... stably:
    # σ(u) − σ(l) = σ(u) σ(−l) (1 − e^{l−u}).
    log_mass = (
        jax.nn.log_sigmoid(upper) + jax.nn.log_sigmoid(-lower) + jnp.log(-jnp.expm1(lower - upper))
    )
    log_cdf_upper = jax.nn.log_sigmoid(upper)  # lowest level: P(X <= upper edge)
    log_sf_lower = jax.nn.log_sigmoid(-lower)  # highest level: P(X > lower edge)
    is_low = x < half_bin
    is_high = x > 1.0 - half_bin
    return jnp.where(is_low, log_cdf_upper, jnp.where(is_high, log_sf_lower, log_mass))


# ---------------------------------------------------------------------------------------------
# Likelihood objects: how many decoder outputs per pixel, and log_prob / mean / sample on them.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Likelihood:
    """Base class. `params` has shape (..., num_params); `x` has shape (...)."""

    name = "base"
    num_params = 1

    def log_prob(self, params: Array, x: Array) -> Array:
        raise NotImplementedError

    def mean(self, params: Array) -> Array:
        raise NotImplementedError

    def sample(self, rng: Array, params: Array) -> Array:
        raise NotImplementedError

    def params_at_mean(self, mean: np.ndarray) -> np.ndarray:
        """Parameters (..., num_params) whose mean is `mean` (...), the others 0 as a zero output
        bias leaves them: the decoder's output bias under config.network.output_bias='data_mean'."""
        raise ValueError(
            f"config.network.output_bias='data_mean' with config.likelihood.name={self.name!r}: "
            f"must be one of {', '.join(MEAN_INVERTIBLE)}, or output_bias='zeros'."
        )

    def _first_param(self, value: np.ndarray) -> np.ndarray:
        out = np.zeros((*value.shape, self.num_params), np.float32)
        out[..., 0] = value
        return out


@dataclasses.dataclass(frozen=True)
class Bernoulli(Likelihood):
    name = "bernoulli"

    def params_at_mean(self, mean: np.ndarray) -> np.ndarray:
        # Clipped as Burda et al.'s code does: pixels that are always 0 in the data get logit −6.9.
        p = np.clip(mean, 1e-3, 1 - 1e-3)
        return self._first_param(np.log(p) - np.log1p(-p))

    def log_prob(self, params: Array, x: Array) -> Array:
        return bernoulli_log_prob(params[..., 0], x)

    def mean(self, params: Array) -> Array:
        return jax.nn.sigmoid(params[..., 0])

    def sample(self, rng: Array, params: Array) -> Array:
        return jax.random.bernoulli(rng, self.mean(params)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ContinuousBernoulli(Likelihood):
    name = "continuous_bernoulli"

    def log_prob(self, params: Array, x: Array) -> Array:
        return continuous_bernoulli_log_prob(params[..., 0], x)

    def mean(self, params: Array) -> Array:
        return continuous_bernoulli_mean(params[..., 0])

    def sample(self, rng: Array, params: Array) -> Array:
        # Inverse CDF: F⁻¹(u) = log(1 + u (e^l − 1)) / l, with the λ = ½ limit F⁻¹(u) = u.
        logits = params[..., 0]
        u = jax.random.uniform(rng, logits.shape)
        small = jnp.abs(logits) < 1e-3
        l_safe = jnp.where(small, 1.0, logits)
        exact = jnp.log1p(u * jnp.expm1(l_safe)) / l_safe
        return jnp.clip(jnp.where(small, u, exact), 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Gaussian(Likelihood):
    """N(x | μ, σ²) with σ fixed (`sigma`) or predicted per pixel by the decoder (σ ≥ min_sigma)."""

    sigma: float = 1.0
    learn_sigma: bool = False
    min_sigma: float = 1e-3
    name = "gaussian"

    @property
    def num_params(self) -> int:  # type: ignore[override]
        return 2 if self.learn_sigma else 1

    def log_scale(self, params: Array) -> Array:
        if self.learn_sigma:
            return jnp.log(self.min_sigma + jax.nn.softplus(params[..., 1]))
        return jnp.full(params.shape[:-1], math.log(self.sigma), params.dtype)

    def log_prob(self, params: Array, x: Array) -> Array:
        return gaussian_log_prob(params[..., 0], self.log_scale(params), x)

    def mean(self, params: Array) -> Array:
        return params[..., 0]

    def params_at_mean(self, mean: np.ndarray) -> np.ndarray:
        return self._first_param(mean)

    def sample(self, rng: Array, params: Array) -> Array:
        noise = jax.random.normal(rng, params.shape[:-1])
        return self.mean(params) + jnp.exp(self.log_scale(params)) * noise


@dataclasses.dataclass(frozen=True)
class DiscretizedLogistic(Likelihood):
    """Logistic(μ, s) discretized onto the data's `num_levels` grey levels (8-bit data: 256)."""

    num_levels: int = 256
    min_log_scale: float = -7.0
    name = "discretized_logistic"
    num_params = 2

    def _log_scale(self, params: Array) -> Array:
        return jnp.maximum(params[..., 1], self.min_log_scale)

    def log_prob(self, params: Array, x: Array) -> Array:
        return discretized_logistic_log_prob(
            params[..., 0], self._log_scale(params), x, self.num_levels
        )

    def mean(self, params: Array) -> Array:
        return jnp.clip(params[..., 0], 0.0, 1.0)

    def params_at_mean(self, mean: np.ndarray) -> np.ndarray:
        return self._first_param(mean)

    def sample(self, rng: Array, params: Array) -> Array:
        u = jax.random.uniform(rng, params.shape[:-1], minval=1e-5, maxval=1 - 1e-5)
        x = params[..., 0] + jnp.exp(self._log_scale(params)) * (jnp.log(u) - jnp.log1p(-u))
        levels = self.num_levels - 1
        return jnp.clip(jnp.round(x * levels), 0, levels) / levels


NAMES = ("bernoulli", "continuous_bernoulli", "gaussian", "discretized_logistic")
# Those with `params_at_mean` (a continuous Bernoulli's mean has no closed-form inverse).
MEAN_INVERTIBLE = ("bernoulli", "gaussian", "discretized_logistic")


@dataclasses.dataclass(frozen=True)
class Units:
    """What the reconstruction term of a (likelihood, data) pair measures."""

    # False only for a Bernoulli on non-binary data: a cross-entropy, so metrics are named `*_xent`.
    # Densities (Gaussian, continuous Bernoulli) count as log-likelihoods, in nats of a density.
    is_log_likelihood: bool
    description: str


def check_compatible(likelihood_cfg, data_kind: str, num_levels: int) -> Units:
    """Reject (likelihood, data) pairs that make no sense, before anything compiles.

    Args:
      likelihood_cfg: `config.likelihood` (name, sigma, learn_sigma, min_sigma).
      data_kind: `binary`, `grey` (discrete grey levels in [0, 1]) or `dequantized`.
      num_levels: number of discrete levels of the raw data (2 for binary, 256 for 8-bit).
    """
    name = likelihood_cfg.name
    if name not in NAMES:
        raise ValueError(f"config.likelihood.name={name!r}: must be one of {', '.join(NAMES)}.")
    per_image = "nats per image, summed over pixels"
    if name == "bernoulli":
        if data_kind == BINARY:
            return Units(True, f"{per_image} (Bernoulli log-likelihood of binary data)")
        return Units(
            False,
            f"binary cross-entropy, {per_image}; NOT a log-likelihood: Bernoulli on {data_kind} "
            "data (binarize, or use continuous_bernoulli, for a proper likelihood)",
        )
    if name == "continuous_bernoulli":
        return Units(True, f"{per_image} (continuous-Bernoulli density on [0, 1]^D)")
    if name == "gaussian":
        if likelihood_cfg.learn_sigma and data_kind != DEQUANTIZED:
            raise ValueError(
                "config.likelihood.learn_sigma=True on discrete data: the learned σ collapses to 0 "
                "and the density diverges. Set config.data.dequantize=True (allowed values of "
                "config.data.dequantize: True | False)."
            )
        if not likelihood_cfg.learn_sigma and likelihood_cfg.sigma <= 0:
            raise ValueError(f"config.likelihood.sigma={likelihood_cfg.sigma}: must be > 0.")
        if likelihood_cfg.learn_sigma and likelihood_cfg.min_sigma <= 0:
            raise ValueError(
                f"config.likelihood.min_sigma={likelihood_cfg.min_sigma}: must be > 0 (the learned "
                "σ's floor)."
            )
        return Units(True, f"{per_image} (Gaussian density on [0, 1]^D)")
    # discretized_logistic
    if data_kind == DEQUANTIZED:
        raise ValueError(
            "config.likelihood.name='discretized_logistic' needs integer grey levels, but "
            "config.data.dequantize=True makes the data continuous. Set it to False."
        )
    return Units(True, f"{per_image} (discretized logistic over {num_levels} levels)")


def make(likelihood_cfg, num_levels: int) -> Likelihood:
    """Builds the likelihood named by `config.likelihood.name`."""
    name = likelihood_cfg.name
    if name == "bernoulli":
        return Bernoulli()
    if name == "continuous_bernoulli":
        return ContinuousBernoulli()
    if name == "gaussian":
        return Gaussian(
            sigma=float(likelihood_cfg.sigma),
            learn_sigma=bool(likelihood_cfg.learn_sigma),
            min_sigma=float(likelihood_cfg.min_sigma),
        )
    if name == "discretized_logistic":
        return DiscretizedLogistic(num_levels=num_levels)
    raise ValueError(f"config.likelihood.name={name!r}: must be one of {', '.join(NAMES)}.")
