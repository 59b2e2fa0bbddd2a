"""Input corruptions: valid range, the noise level they claim, freshness, and config checks."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from autoencoders import corruptions

NUM_PIXELS = 200_000  # binomial standard error of a fraction: at most 0.5 / sqrt(N) ≈ 0.0011


def _mid_grey() -> jax.Array:
    return jnp.full((NUM_PIXELS // 784, 28, 28, 1), 0.5)


def _fraction_margin(p: float, n: int) -> float:
    return 5 * np.sqrt(p * (1 - p) / n)  # five binomial standard errors: never flakes


@pytest.mark.parametrize(
    "name, level",
    [("gaussian", 0.3), ("gaussian", 3.0), ("masking", 0.5), ("salt_and_pepper", 0.5)],
)
def test_corrupted_inputs_stay_in_unit_interval(name, level):
    x = jax.random.uniform(jax.random.key(0), (64, 28, 28, 1))
    x = x.at[:8].set(0.0).at[8:16].set(1.0)  # saturated images, where noise would leave [0, 1]
    noisy = corruptions.corrupt(name, jax.random.key(1), x, level)
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert not np.array_equal(np.asarray(noisy), np.asarray(x))


def test_gaussian_sigma_matches_level_before_clipping():
    # On mid-grey input σ = 0.1 reaches 0 or 1 only at 5σ: the empirical σ is the level.
    x = _mid_grey()
    noise = corruptions.gaussian(jax.random.key(0), x, 0.1) - x
    assert float(jnp.mean(noise)) == pytest.approx(0.0, abs=5 * 0.1 / np.sqrt(x.size))
    assert float(jnp.std(noise)) == pytest.approx(0.1, rel=0.01)


def test_gaussian_clipping_shrinks_the_effective_noise():
    # As the docstring says: σ = 0.5 on mid-grey is clipped at ±1σ, so the spread is well below σ.
    x = _mid_grey()
    noise = corruptions.gaussian(jax.random.key(0), x, 0.5) - x
    assert float(jnp.std(noise)) < 0.4
    # One standard normal beyond ±1: about 31.7 % of the pixels end at exactly 0 or 1.
    saturated = float(jnp.mean((noise == 0.5) | (noise == -0.5)))
    assert saturated == pytest.approx(0.3173, abs=_fraction_margin(0.3173, x.size))


@pytest.mark.parametrize("level", [0.1, 0.25, 0.7])
def test_masking_zeroes_the_requested_fraction(level):
    x = _mid_grey()
    noisy = corruptions.masking(jax.random.key(0), x, level)
    zeroed = float(jnp.mean(noisy == 0.0))
    assert zeroed == pytest.approx(level, abs=_fraction_margin(level, x.size))
    assert set(np.unique(np.asarray(noisy))) <= {0.0, 0.5}  # the rest is untouched


@pytest.mark.parametrize("level", [0.1, 0.4])
def test_salt_and_pepper_sets_the_fraction_to_zero_or_one_equally(level):
    x = _mid_grey()
    noisy = corruptions.salt_and_pepper(jax.random.key(0), x, level)
    assert set(np.unique(np.asarray(noisy))) <= {0.0, 0.5, 1.0}
    hit = float(jnp.mean(noisy != 0.5))
    salt = float(jnp.mean(noisy == 1.0))
    assert hit == pytest.approx(level, abs=_fraction_margin(level, x.size))
    assert salt == pytest.approx(level / 2, abs=_fraction_margin(level / 2, x.size))


def test_fresh_noise_per_key_and_jit():
    x = jnp.full((4, 8, 8, 1), 0.5)
    jitted = jax.jit(corruptions.corrupt, static_argnums=0)
    for name in corruptions.CORRUPTIONS:
        a = jitted(name, jax.random.key(0), x, 0.3)
        b = jitted(name, jax.random.key(1), x, 0.3)
        eager = corruptions.corrupt(name, jax.random.key(0), x, 0.3)
        np.testing.assert_allclose(a, eager, atol=1e-6)  # same draw; XLA may fuse differently
        assert not np.array_equal(np.asarray(a), np.asarray(b)), name


@pytest.mark.parametrize(
    "corruption, level, message",
    [
        ("blur", 0.1, "config.model.corruption='blur': must be one of gaussian"),
        ("gaussian", -0.1, "config.model.noise_level=-0.1"),
        ("masking", 1.5, "must be in [0, 1]"),
        ("salt_and_pepper", -0.2, "must be in [0, 1]"),
    ],
)
def test_check_config_names_the_field(corruption, level, message):
    cfg = ml_collections.ConfigDict({"corruption": corruption, "noise_level": level})
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        corruptions.check_config(cfg)
