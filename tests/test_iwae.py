"""The importance-weighted bound: its formula, k = 1 is the ELBO, it tightens with k towards
log p(x) (found by quadrature over a 2-D latent), and the iwae family's objectives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import bounds, data, models, priors, training
from autoencoders.models import iwae, vae
from tests.family_helpers import tiny_family_config
from tests.helpers import tiny_config

BATCH = 4


def test_bound_formula():
    log_w = jnp.log(jnp.array([[1.0], [2.0], [3.0]]))  # K = 3, B = 1
    np.testing.assert_allclose(bounds.importance_weighted_bound(log_w), [np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(bounds.mean_elbo(log_w), [np.log(6.0) / 3], rtol=1e-6)
    # Equal weights: the −log K makes the bound the common value, at any scale (no overflow).
    for k in (1, 7):
        same = jnp.full((k, 2), -1000.0)
        np.testing.assert_allclose(bounds.importance_weighted_bound(same), [-1000.0] * 2)
    # K = 1: the bound is the one log-weight, i.e. the one-sample ELBO.
    one = jnp.array([[-3.5, 2.0]])
    np.testing.assert_array_equal(bounds.importance_weighted_bound(one), one[0])


def test_reweighted_paths_weights_only_the_samples_gradient():
    """`bounds.reweighted_paths`: the same log-weights; what it closes over gets their usual
    gradient, and sample k's gradient one more factor softmax_k(log w)_k (broadcast over the
    sample's own axes), whatever the cotangent."""
    theta = jnp.array(0.7)
    z = jax.random.normal(jax.random.key(0), (5, 3, 2))  # K = 5, B = 3, 2-D samples
    cotangent = jax.random.normal(jax.random.key(1), (5, 3))

    def log_w(theta, z):
        return -jnp.sum((z - theta) ** 2, axis=-1)

    def reweighted(theta, z):
        return bounds.reweighted_paths(lambda samples: log_w(theta, samples), z)

    np.testing.assert_array_equal(reweighted(theta, z), log_w(theta, z))
    plain = jax.grad(lambda t, s: jnp.sum(cotangent * log_w(t, s)), (0, 1))(theta, z)
    weighted = jax.grad(lambda t, s: jnp.sum(cotangent * reweighted(t, s)), (0, 1))(theta, z)
    normalised = jax.nn.softmax(log_w(theta, z), axis=0)
    np.testing.assert_allclose(weighted[0], plain[0], rtol=1e-6)
    np.testing.assert_allclose(weighted[1], plain[1] * normalised[..., None], rtol=1e-6)


@pytest.fixture(scope="module")
def untrained():
    """A tiny iwae model (latent 2, digits shape), its initial parameters and a binary batch."""
    config = tiny_family_config("iwae")
    model = models.make(config, data.describe(config.data))
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (BATCH, 8, 8, 1)).astype(jnp.float32)
    return model, model.init(jax.random.key(1), {"x": x}), {"x": x}


def _grouped_bounds(log_w: jax.Array, k: int) -> jax.Array:
    """L_k of consecutive groups of k samples from a pool (N, B): shape (N // k, B)."""
    groups = log_w[: (log_w.shape[0] // k) * k].reshape(-1, k, log_w.shape[1])
    return bounds.importance_weighted_bound(jnp.swapaxes(groups, 0, 1))


def _log_marginal_by_quadrature(model, params, x, half_width=7.0, num=301) -> np.ndarray:
    """log p(x) = log ∫ p(x|z) p(z) dz on a grid over a 2-D latent (B,)."""
    t = jnp.linspace(-half_width, half_width, num)
    z = jnp.stack(jnp.meshgrid(t, t), -1).reshape(-1, 2)
    log_cell = 2 * jnp.log(t[1] - t[0])

    @jax.jit
    def one(image):
        nll, _ = model.recon_terms(params, z, jnp.broadcast_to(image, (z.shape[0], *image.shape)))
        log_joint = -nll + priors.StandardNormal(2).log_prob(z)
        return jax.scipy.special.logsumexp(log_joint) + log_cell

    return np.array([float(one(image)) for image in x])


def test_bound_tightens_with_k_towards_log_marginal(untrained):
    model, params, batch = untrained
    log_w = model.log_importance_weights(params, batch, jax.random.key(2), 10_000)
    means, std_errors = {}, {}
    for k in (1, 5, 50):
        groups = np.asarray(_grouped_bounds(log_w, k))
        means[k] = groups.mean(0)
        std_errors[k] = groups.std(0) / np.sqrt(groups.shape[0])
    # E[L_1] < E[L_5] < E[L_50], each gap beyond five standard errors of the difference.
    for small, large in ((1, 5), (5, 50)):
        margin = 5 * np.hypot(std_errors[small], std_errors[large])
        assert np.all(means[large] - means[small] > margin), (small, large, means)
    # ... towards log p(x): L_10000 is within 0.1 nats below it, and E[L_50] is below it.
    log_px = _log_marginal_by_quadrature(model, params, batch["x"])
    assert np.all(means[50] < log_px)
    np.testing.assert_allclose(bounds.importance_weighted_bound(log_w), log_px, atol=0.1)


def test_k1_bound_is_the_elbo_in_expectation(untrained):
    # With one sample the bound is log p(x|z) + log p(z) − log q(z|x), z ~ q: a Monte Carlo ELBO.
    # Its mean matches the vae family's ELBO (analytic KL) over many keys.
    model, params, batch = untrained
    keys = jax.random.split(jax.random.key(3), 4000)
    one_sample = jax.vmap(lambda k: model.log_importance_weights(params, batch, k, 1)[0])(keys)
    plain = vae.VAE(model.config, model.spec)
    neg_elbo = jax.vmap(lambda k: plain.loss(params, batch, k)[1]["neg_elbo"])(keys)
    diff = np.asarray(one_sample + neg_elbo)  # (keys, B): ELBO estimate minus ELBO estimate
    std_error = diff.std(0) / np.sqrt(len(keys))
    assert np.all(np.abs(diff.mean(0)) < 5 * std_error + 1e-3)


def _iwae(config_arg: str, k: int):
    config = tiny_family_config("iwae", config_arg, **{"model.num_samples": k})
    return models.make(config, data.describe(config.data))


def test_objectives_coincide_at_k1_and_differ_above(untrained):
    _, params, batch = untrained
    rng = jax.random.key(4)
    iwae_1 = _iwae("objective=iwae", 1).loss(params, batch, rng)[1]
    vae_1 = _iwae("objective=vae", 1).loss(params, batch, rng)[1]
    np.testing.assert_array_equal(iwae_1["loss"], vae_1["loss"])
    np.testing.assert_array_equal(iwae_1["loss"], iwae_1["neg_iwae_bound"])

    iwae_5 = _iwae("objective=iwae", 5).loss(params, batch, rng)[1]
    vae_5 = _iwae("objective=vae", 5).loss(params, batch, rng)[1]
    # Same samples (same key): the loss is −L_5 for iwae and −(1/5) Σ log w for vae, and by
    # Jensen the first is the smaller for every image.
    np.testing.assert_array_equal(iwae_5["neg_iwae_bound"], vae_5["neg_iwae_bound"])
    np.testing.assert_array_equal(iwae_5["loss"], iwae_5["neg_iwae_bound"])
    assert np.all(np.asarray(iwae_5["loss"]) < np.asarray(vae_5["loss"]))


def test_terms_report_the_vae_family_metrics(untrained):
    model, params, batch = untrained
    terms = model.loss(params, batch, jax.random.key(5))[1]
    assert set(terms) == {"loss", "neg_iwae_bound", "neg_elbo", "recon_nll", "kl", "sq_err"}
    assert all(v.shape == (BATCH,) for v in terms.values())
    np.testing.assert_allclose(terms["neg_elbo"], terms["recon_nll"] + terms["kl"], rtol=1e-6)
    # The progress line shows each once, the importance-weighted bound first.
    assert model.progress_terms == ("neg_iwae_bound", "neg_elbo", "recon_nll", "kl")


def _gradients(model, params, batch, key):
    """(loss, gradient) of the minibatch's mean loss with one key."""
    return jax.value_and_grad(lambda p: jnp.mean(model.loss(p, batch, key)[1]["loss"]))(params)


@pytest.mark.parametrize("family", ["iwae", "hvae"])
def test_dreg_keeps_the_loss_and_the_generative_gradient(family):
    """With the same samples, `gradient=dreg` reports the same −L_K and gives p's networks the
    same gradient; only q's networks get another one."""
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (BATCH, 8, 8, 1)).astype(jnp.float32)
    batch = {"x": x, "y": jnp.zeros(BATCH, jnp.int32)}
    results = {}
    for gradient in iwae.GRADIENTS:
        config = tiny_family_config(family, f"k=5,gradient={gradient}")
        model = models.make(config, data.describe(config.data))
        params = model.init(jax.random.key(1), batch)
        results[gradient] = _gradients(model, params, batch, jax.random.key(2))
    (loss, plain), (dreg_loss, dreg) = results["reparameterization"], results["dreg"]
    assert float(dreg_loss) == pytest.approx(float(loss), rel=1e-6)
    for network in plain:
        leaves = zip(jax.tree.leaves(plain[network]), jax.tree.leaves(dreg[network]), strict=True)
        for a, b in leaves:
            if network in model.inference_networks:
                assert not np.allclose(a, b, atol=1e-4)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(model.inference_networks) < set(plain)


@pytest.mark.parametrize("family", ["iwae", "hvae"])
@pytest.mark.parametrize("objective", iwae.OBJECTIVES)
def test_dreg_gradient_is_the_path_derivative_estimator(family, objective):
    """`gradient=dreg` gives p's networks the objective's own gradient and q's only the samples'
    path: Σ_k w̃_k² ∂log w_k/∂φ for iwae (Tucker et al.'s DReG), (1/K) Σ_k ∂log w_k/∂φ for vae
    (Roeder et al.'s), as two copies of the same log-weights give them here, each copy carrying
    one part (log q at stopped parameters in both)."""
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (BATCH, 8, 8, 1)).astype(jnp.float32)
    batch, rng, k = {"x": x, "y": jnp.zeros(BATCH, jnp.int32)}, jax.random.key(2), 5
    config = tiny_family_config(family, f"k={k},objective={objective},gradient=dreg")
    model = models.make(config, data.describe(config.data))
    params = model.init(jax.random.key(1), batch)

    def two_copies(params):
        stopped = jax.lax.stop_gradient(params)
        q_only = {n: p if n in model.inference_networks else stopped[n] for n, p in params.items()}
        p_only = {n: stopped[n] if n in model.inference_networks else p for n, p in params.items()}
        log_w_p = model.log_importance_weights(p_only, batch, rng, k, stopped)
        log_w_q = model.log_importance_weights(q_only, batch, rng, k, stopped)
        if objective == "vae":
            return jnp.mean(log_w_p + log_w_q)
        w = jax.lax.stop_gradient(jax.nn.softmax(log_w_p, axis=0))
        return jnp.mean(jnp.sum(w * log_w_p + w**2 * log_w_q, axis=0))

    expected = jax.grad(two_copies)(params)
    actual = jax.grad(lambda p: jnp.mean(model.training_bounds(p, batch, rng)[0]))(params)
    for network in params:
        pairs = zip(
            jax.tree.leaves(actual[network]), jax.tree.leaves(expected[network]), strict=True
        )
        for a, b in pairs:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=network)


def test_dreg_gradient_for_q_has_the_same_mean_and_less_variance():
    """Over 2,000 draws of the K = 20 samples, the encoder's DReG gradient averages to the plain
    one (it is unbiased: paired differences along random directions within 4 standard errors)
    and varies far less (the point of DReG: Tucker et al. 2019)."""
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (BATCH, 8, 8, 1)).astype(jnp.float32)
    batch = {"x": x, "y": jnp.zeros(BATCH, jnp.int32)}
    keys = jax.random.split(jax.random.key(3), 2000)
    draws = {}
    for gradient in iwae.GRADIENTS:
        model = _iwae(f"gradient={gradient}", 20)
        params = model.init(jax.random.key(1), batch)

        def encoder_gradient(key, model=model, params=params):
            grads = _gradients(model, params, batch, key)[1]["encoder"]
            return jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(grads)])

        draws[gradient] = np.asarray(jax.jit(jax.vmap(encoder_gradient))(keys), np.float64)
    plain, dreg = draws["reparameterization"], draws["dreg"]
    directions = np.random.default_rng(0).normal(size=(plain.shape[1], 8))
    paired = (plain - dreg) @ directions  # (draws, 8): same samples, so paired
    z = paired.mean(0) / (paired.std(0) / np.sqrt(len(keys)))
    assert np.all(np.abs(z) < 4), z
    assert dreg.var(0).sum() < 0.2 * plain.var(0).sum()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.objective": "elbo"}, "config.model.objective='elbo': must be one of iwae, vae"),
        (
            {"model.gradient": "score"},
            "config.model.gradient='score': must be one of reparameterization, dreg",
        ),
        ({"model.num_samples": 0}, "config.model.num_samples=0: must be >= 1"),
        ({"model.beta": 4.0}, "config.model.beta=4.0: the iwae family"),
    ],
)
def test_config_errors_come_before_anything_compiles(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_family_config("iwae", **overrides))


def test_missing_fields_name_the_config_file():
    with pytest.raises(ValueError, match="missing objective, num_samples.*configs/iwae.py"):
        training.check_config(tiny_config("iwae"))
