"""The two-stochastic-layer model (`hvae`): its importance-sampled log-likelihood against a model
whose log p(x) is known exactly, and a short training run evaluated by importance sampling.

With every layer linear (no hidden layers), constant variances and a Gaussian likelihood of fixed
σ, p(z2) p(z1|z2) p(x|z1) is a linear-Gaussian chain: x is Gaussian with a closed-form mean and
covariance. The IWAE estimate with many samples must converge to that log p(x), from below, and
the one-sample ELBO must lie below it, whatever the (here random, linear) inference network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from autoencoders import bounds, data, density, evaluation, models, training
from tests.helpers import tiny_config

D1, D2 = 3, 2  # z1, z2


def _linear_gaussian_model(**model_fields):
    """The linear-Gaussian chain; `model_fields` override config.model's objective (iwae),
    num_samples (1) and gradient (reparameterization)."""
    config = tiny_config(
        "hvae",
        likelihood="gaussian",
        **{
            "model.latent_dim": D2,
            "network.hidden": (),
            "train.num_epochs": 1,
        },
    )
    with config.unlocked():
        config.model.objective = "iwae"
        config.model.num_samples = 1
        config.model.gradient = "reparameterization"
        config.model.latent1_dim = D1
        config.model.hidden2 = ()
        config.model.update(model_fields)
    config.likelihood.sigma = 0.5
    model = models.make(config, data.describe(config.data))
    return config, model


def _set_generative(
    params, rng: np.random.Generator, num_pixels: int, diagonal_posterior: bool = False
):
    """p(z1|z2) = N(z2 A + a, diag s1), p(x|z1) = N(z1 W + b, σ² I): the chosen A, a, s1, W, b.

    `diagonal_posterior`: A's columns and W's rows orthogonal, so that p(z1 | x) and p(z2 | z1)
    have diagonal covariances, which q's diagonal Gaussians can then match exactly."""
    a_mat = rng.normal(size=(D2, D1))
    a_vec = rng.normal(size=D1) * 0.5
    log_s1 = rng.normal(size=D1) * 0.3
    w_mat = rng.normal(size=(D1, num_pixels)) * 0.4
    if diagonal_posterior:
        a_mat = np.eye(D2, D1) * a_mat  # z2_i drives z1_i alone; z1's last unit has no parent
        w_mat = np.linalg.qr(w_mat.T)[0].T * rng.uniform(0.5, 2.0, size=(D1, 1))
    b_vec = rng.normal(size=num_pixels) * 0.2
    dec2 = params["decoder2"]["params"]["dense_0"]
    dec2["kernel"] = jnp.asarray(np.concatenate([a_mat, np.zeros((D2, D1))], 1), jnp.float32)
    dec2["bias"] = jnp.asarray(np.concatenate([a_vec, log_s1]), jnp.float32)
    out = params["decoder"]["params"]["out"]
    out["kernel"] = jnp.asarray(w_mat, jnp.float32)
    out["bias"] = jnp.asarray(b_vec, jnp.float32)
    return a_mat, a_vec, np.exp(log_s1), w_mat, b_vec


def _set_inference(
    params, a_mat, a_vec, s1, w_mat, b_vec, sigma: float, variance_factor: float = 2.0
) -> None:
    """q(z1|x) and q(z2|z1): the exact conditionals' means (linear maps), with `variance_factor`
    times their variances on the diagonal (by default twice, so q is close to, but not, the
    posterior; with 1, q(z1|x) q(z2|z1) is the exact posterior p(z1, z2 | x))."""
    cov_z1 = a_mat.T @ a_mat + np.diag(s1)
    post1 = np.linalg.inv(np.linalg.inv(cov_z1) + w_mat @ w_mat.T / sigma**2)
    kernel1 = w_mat.T @ post1 / sigma**2
    bias1 = post1 @ np.linalg.solve(cov_z1, a_vec) - b_vec @ kernel1
    post2 = np.linalg.inv(np.eye(D2) + a_mat @ np.diag(1 / s1) @ a_mat.T)
    kernel2 = np.diag(1 / s1) @ a_mat.T @ post2
    bias2 = -a_vec @ kernel2
    for name, layer, kernel, bias, cov in (
        ("encoder", "out", kernel1, bias1, post1),
        ("encoder2", "dense_0", kernel2, bias2, post2),
    ):
        dim = kernel.shape[1]
        leaves = params[name]["params"][layer]
        leaves["kernel"] = jnp.asarray(
            np.concatenate([kernel, np.zeros_like(kernel)], 1), jnp.float32
        )
        log_var = np.log(variance_factor * np.diag(cov))
        leaves["bias"] = jnp.asarray(np.concatenate([bias, log_var]), jnp.float32)
        assert leaves["kernel"].shape[1] == 2 * dim


def test_importance_sampled_likelihood_converges_to_the_exact_one_from_above_the_elbo():
    config, model = _linear_gaussian_model()
    shape = model.spec.shape
    num_pixels = int(np.prod(shape))
    params = jax.tree.map(lambda a: a, model.init(jax.random.key(0), {"x": jnp.zeros((1, *shape))}))
    rng = np.random.default_rng(0)
    a_mat, a_vec, s1, w_mat, b_vec = _set_generative(params, rng, num_pixels)
    sigma = config.likelihood.sigma
    _set_inference(params, a_mat, a_vec, s1, w_mat, b_vec, sigma)

    # Exact marginal: z1 ~ N(a, AᵀA + diag s1), x ~ N(a W + b, Wᵀ cov_z1 W + σ² I).
    cov_z1 = a_mat.T @ a_mat + np.diag(s1)
    mean_x = a_vec @ w_mat + b_vec
    cov_x = w_mat.T @ cov_z1 @ w_mat + sigma**2 * np.eye(num_pixels)
    x = rng.multivariate_normal(mean_x, cov_x, size=4)
    exact = stats.multivariate_normal(mean_x, cov_x).logpdf(x)

    batch = {"x": jnp.asarray(x.reshape(4, *shape), jnp.float32), "y": jnp.zeros(4, jnp.int32)}
    log_w = np.asarray(
        model.log_importance_weights(params, batch, jax.random.key(1), 20_000), np.float64
    )
    many = np.asarray(bounds.importance_weighted_bound(jnp.asarray(log_w)))
    few = np.asarray(bounds.importance_weighted_bound(jnp.asarray(log_w[:10])))
    elbo = log_w.mean(axis=0)
    np.testing.assert_allclose(many, exact, atol=0.05)
    assert np.all(elbo < exact - 0.1)  # the ELBO is a strict bound here (q is not the posterior)
    assert np.all(np.abs(few - exact) >= np.abs(many - exact) - 0.01)

    # The same weights through density.py's estimator (chunks, running logsumexp).
    estimates = density.importance_sampled_log_likelihood(
        model, params, batch["x"], batch["y"], jax.random.key(2), 20_000, sample_chunk=5000
    )
    np.testing.assert_allclose(estimates[20_000], exact, atol=0.05)


@pytest.mark.parametrize("objective", ["iwae", "vae"])
def test_dreg_gradient_for_q_vanishes_at_the_exact_posterior(objective):
    """With q(z1, z2 | x) the exact posterior, every log-weight is log p(x) whatever the samples:
    the path gradients for q (DReG for the IWAE bound, sticking the landing for the ELBO) are zero
    for every draw, while the plain reparameterization gradient is not (its score term is zero
    only in expectation). Both networks of q are checked, at K = 10."""
    grads = {}
    for gradient in ("reparameterization", "dreg"):
        config, model = _linear_gaussian_model(
            objective=objective, num_samples=10, gradient=gradient
        )
        shape = model.spec.shape
        params = model.init(jax.random.key(0), {"x": jnp.zeros((1, *shape))})
        generative = _set_generative(
            params, np.random.default_rng(0), int(np.prod(shape)), diagonal_posterior=True
        )
        _set_inference(params, *generative, config.likelihood.sigma, variance_factor=1.0)
        x = jax.random.normal(jax.random.key(1), (4, *shape))
        batch = {"x": x, "y": jnp.zeros(4, jnp.int32)}

        def loss(p, key, model=model, batch=batch):
            return jnp.mean(model.loss(p, batch, key)[1]["loss"])

        grads[gradient] = [jax.grad(loss)(params, jax.random.key(s)) for s in range(3)]
    for plain, dreg in zip(grads["reparameterization"], grads["dreg"], strict=True):
        for network in model.inference_networks:
            dreg_q = np.concatenate([np.ravel(a) for a in jax.tree.leaves(dreg[network])])
            plain_q = np.concatenate([np.ravel(a) for a in jax.tree.leaves(plain[network])])
            assert np.max(np.abs(dreg_q)) < 1e-3 * np.max(np.abs(plain_q)), network
            assert np.max(np.abs(plain_q)) > 1e-2


def test_hvae_trains_and_is_evaluated_by_importance_sampling(tmp_path):
    config = tiny_config("hvae", **{"train.num_epochs": 1, "network.activation": "tanh"})
    with config.unlocked():
        config.model.objective = "iwae"
        config.model.num_samples = 3
        config.model.latent1_dim = 4
        config.model.hidden2 = (8,)
    final = training.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(final["test/neg_iwae_bound"])
    assert final["test/neg_iwae_bound"] <= final["test/neg_elbo"] + 1.0
    run = evaluation.load_run(str(tmp_path))
    options = evaluation.Options(
        parts=("density",), num_samples=50, report_ks=(1, 10), density_examples=40
    )
    out, each = density.density(
        run.model, run.params, run.x_test, run.y_test, jax.random.key(0), options
    )
    assert out["nll"]["num_samples"] == 50
    by_k = {int(k): v["value"] for k, v in out["nll_by_k"].items()}
    assert by_k[50] <= by_k[1] + 1e-3  # more samples, a tighter bound on −log p(x)
    # The per-image values behind those means, on the estimate's 40 test images.
    assert each["index"].shape == (40,) and len(set(each["index"])) == 40
    assert each["nll"].mean() == pytest.approx(out["nll"]["value"])
    assert each["nll_k1"].mean() == pytest.approx(by_k[1])
    assert each["neg_elbo"].shape == (40,)
    assert out["active_units"]["of"] == 2  # the top layer's
    layers = run.model.layer_means(run.params, run.x_test[:5])
    assert layers["z1"].shape == (5, 4) and layers["z2"].shape == (5, 2)


@pytest.mark.parametrize("field, value", [("latent1_dim", 0), ("hidden2", (0,))])
def test_bad_hvae_fields_are_refused(field, value):
    config = tiny_config("hvae")
    with config.unlocked():
        config.model.objective = "iwae"
        config.model.num_samples = 1
        config.model.latent1_dim = 4
        config.model.hidden2 = (8,)
        config.model[field] = value
    with pytest.raises(ValueError, match=field):
        training.check_config(config)
