"""Denoising AE / VAE: the encoder sees the corrupted input, the loss targets the clean one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, models, training
from autoencoders.models import dae
from tests.family_helpers import jitter
from tests.helpers import tiny_config


def _model(family: str, corruption: str = "masking", level: float = 1.0, likelihood="bernoulli"):
    config = tiny_config(
        family, likelihood, **{"model.corruption": corruption, "model.noise_level": level}
    )
    model = models.make(config, data.describe(config.data))
    x = jax.random.bernoulli(jax.random.key(0), 0.4, (16, 8, 8, 1)).astype(jnp.float32)
    # Random biases too (Flax starts them at 0, which would map x̃ = 0 to all-zero logits).
    params = jitter(model.init(jax.random.key(1), {"x": x}), jax.random.key(2))
    return model, params, x


def _nll(model, params, z, target):
    return model.recon_terms(params, z, target)[0]


def test_dae_reconstructs_the_clean_input_from_the_corrupted_one():
    # Masking every pixel makes the corruption deterministic: x̃ = 0.
    model, params, x = _model("dae", "masking", 1.0)
    terms = model.loss(params, {"x": x}, jax.random.key(2))[1]
    z_noisy = model.encode(params, jnp.zeros_like(x))
    expected = _nll(model, params, z_noisy, x)  # encode x̃, score the clean x
    np.testing.assert_allclose(terms["loss"], expected, rtol=1e-6)
    np.testing.assert_allclose(terms["recon_nll"], expected, rtol=1e-6)
    # Not the corrupted target, and not the plain AE's clean input.
    wrong_target = _nll(model, params, z_noisy, jnp.zeros_like(x))
    no_corruption = _nll(model, params, model.encode(params, x), x)
    assert np.max(np.abs(np.asarray(terms["loss"] - wrong_target))) > 1.0
    assert np.max(np.abs(np.asarray(terms["loss"] - no_corruption))) > 1e-2


def test_dvae_posterior_sees_the_corruption_and_the_likelihood_the_clean_input():
    model, params, x = _model("dvae", "masking", 1.0)
    rng = jax.random.key(3)
    terms = model.loss(params, {"x": x}, rng)[1]
    # The documented key use: the corruption draws from split(rng)[0], the VAE from split(rng)[1].
    vae_rng = jax.random.split(rng)[1]
    mean, log_var = model.posterior(params, jnp.zeros_like(x))  # q(z | x̃ = 0)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(vae_rng, mean.shape)
    np.testing.assert_allclose(terms["recon_nll"], _nll(model, params, z, x), rtol=1e-5)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(terms["neg_elbo"], terms["recon_nll"] + terms["kl"], rtol=1e-6)
    wrong_target = _nll(model, params, z, jnp.zeros_like(x))
    assert np.max(np.abs(np.asarray(terms["recon_nll"] - wrong_target))) > 1.0


@pytest.mark.parametrize("family", ["dae", "dvae"])
def test_zero_noise_is_the_plain_family(family):
    model, params, x = _model(family, "gaussian", 0.0)
    plain = models.FAMILIES[{"dae": "ae", "dvae": "vae"}[family]](model.config, model.spec)
    rng = jax.random.key(4)
    noisy_terms = model.loss(params, {"x": x}, rng)[1]
    plain_terms = plain.loss(params, {"x": x}, jax.random.split(rng)[1])[1]
    for k, v in plain_terms.items():
        np.testing.assert_allclose(noisy_terms[k], v, rtol=1e-6, err_msg=k)


def test_eval_reports_denoising_and_clean_terms():
    model, params, x = _model("dae", "salt_and_pepper", 0.3)
    rng = jax.random.key(5)
    terms = model.eval_terms(params, {"x": x}, rng)
    assert {"loss", "recon_nll", "sq_err", "clean_recon_nll", "clean_sq_err"} == set(terms)
    clean = model.encode(params, x)
    np.testing.assert_allclose(terms["clean_recon_nll"], _nll(model, params, clean, x), rtol=1e-6)
    # Salt and pepper at 30 % moves the code, so the two differ.
    assert not np.allclose(terms["recon_nll"], terms["clean_recon_nll"])


def test_mixin_is_one_class_over_both_families():
    assert issubclass(dae.DenoisingAE, dae.Denoising) and issubclass(
        dae.DenoisingVAE, dae.Denoising
    )
    assert models.FAMILIES["dae"] is dae.DenoisingAE and models.FAMILIES["dvae"] is dae.DenoisingVAE


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({}, "config.model is missing corruption, noise_level: family 'dae'"),
        ({"model.corruption": "blur", "model.noise_level": 0.1}, "config.model.corruption='blur'"),
        ({"model.corruption": "masking", "model.noise_level": 2.0}, "noise_level=2.0"),
    ],
)
def test_config_errors_come_before_anything_compiles(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_config("dae", **overrides))
