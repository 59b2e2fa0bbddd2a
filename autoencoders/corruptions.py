"""Input corruptions for denoising autoencoders (Vincent et al. 2008, 2010), applied on device.

Each is a pure function `(rng, x, level) -> x̃` of images in [0, 1]; the corrupted images stay in
[0, 1] so the encoder sees inputs from the data's own range. Models call them inside the compiled
training step with the step's key, so every minibatch gets fresh noise at no host cost.

- `gaussian`: x̃ = clip(x + σ ε, 0, 1), ε ~ N(0, I); `level` is σ.
- `masking`: each pixel is set to 0 independently with probability `level` (the expected fraction
  of pixels zeroed; Vincent et al.'s "masking noise").
- `salt_and_pepper`: each pixel, independently with probability `level`, is replaced by 0 or 1
  with equal probability.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def gaussian(rng: Array, x: Array, sigma: float) -> Array:
    """x + N(0, σ²) noise, clipped to [0, 1].

    Clipping changes the effective noise: near 0 and 1 (most MNIST pixels) it is no longer
    zero-mean Gaussian with standard deviation σ but a rectified one, with a smaller spread and a
    mean pulled towards the interior. σ is the standard deviation *before* clipping.
    """
    return jnp.clip(x + sigma * jax.random.normal(rng, x.shape, x.dtype), 0.0, 1.0)


def masking(rng: Array, x: Array, fraction: float) -> Array:
    """Each pixel zeroed independently with probability `fraction`."""
    return jnp.where(jax.random.bernoulli(rng, fraction, x.shape), 0.0, x).astype(x.dtype)


def salt_and_pepper(rng: Array, x: Array, fraction: float) -> Array:
    """Each pixel, with probability `fraction`, set to 0 or 1 (each with probability ½)."""
    hit_rng, value_rng = jax.random.split(rng)
    hit = jax.random.bernoulli(hit_rng, fraction, x.shape)
    salt = jax.random.bernoulli(value_rng, 0.5, x.shape).astype(x.dtype)
    return jnp.where(hit, salt, x)


CORRUPTIONS: dict[str, Callable[[Array, Array, float], Array]] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
}


def corrupt(name: str, rng: Array, x: Array, level: float) -> Array:
    """Applies the corruption `name` at `level` (σ for gaussian, a probability otherwise)."""
    return CORRUPTIONS[name](rng, x, level)


def check_config(model_cfg) -> None:
    """Readable errors for `config.model.corruption` and `config.model.noise_level`."""
    name, level = model_cfg.corruption, model_cfg.noise_level
    if name not in CORRUPTIONS:
        raise ValueError(
            f"config.model.corruption={name!r}: must be one of {', '.join(CORRUPTIONS)}."
        )
    if name == "gaussian" and not level >= 0:
        raise ValueError(
            f"config.model.noise_level={level}: the Gaussian σ must be >= 0 (pixels are in [0, 1])."
        )
    if name != "gaussian" and not 0 <= level <= 1:
        raise ValueError(
            f"config.model.noise_level={level}: with corruption={name!r} it is the probability "
            "that a pixel is corrupted, so it must be in [0, 1]."
        )
