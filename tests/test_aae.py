"""Adversarial autoencoder: the code distribution is pushed onto the prior; phases; resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, metrics, models, optim, training
from tests.helpers import AAE, assert_resume_matches, tiny_config, train_epochs


def mmd(a: np.ndarray, b: np.ndarray, bandwidth: float = 0.5) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel (biased V-statistic)."""

    def kernel(u, v):
        sq = np.sum((u[:, None] - v[None]) ** 2, axis=-1)
        return np.exp(-sq / (2 * bandwidth**2)).mean()

    return float(kernel(a, a) + kernel(b, b) - 2 * kernel(a, b))


def _train(config, num_epochs):
    """(model, codes of the training images before, after `num_epochs`, their labels)."""
    model, before, after, x, labels = train_epochs(config, num_epochs)
    return model, np.asarray(model.encode(before, x)), np.asarray(model.encode(after, x)), labels


def test_codes_move_toward_the_mixture_prior():
    config = tiny_config("aae", **AAE)
    model, before, after, _ = _train(config, num_epochs=15)
    prior_draws = np.asarray(model.prior.sample(jax.random.key(2), len(after)))
    mmd_before, mmd_after = mmd(before, prior_draws), mmd(after, prior_draws)
    assert mmd_after < 0.3 * mmd_before, (mmd_before, mmd_after)
    # Moments: the prior's mean radius is ≈ 1.45; the codes' should come near it.
    prior_radius = np.linalg.norm(prior_draws, axis=1).mean()
    assert abs(np.linalg.norm(after, axis=1).mean() - prior_radius) < 0.3


@pytest.mark.slow
def test_conditional_codes_land_in_their_class_component():
    """The encoder never sees the label: it has to learn to send each class to its component."""
    overrides = {**AAE, "model.conditional": True, "model.generator_steps": 2}
    config = tiny_config("aae", **overrides)
    config.network.hidden = (128,)
    model, _, after, labels = _train(config, num_epochs=15)
    component = np.argmax(np.asarray(model.prior.component_log_probs(jnp.asarray(after))), axis=1)
    assert np.mean(component == labels) > 0.3  # chance: 0.1 (measured: 0.47)


def test_reconstruction_phase_alone_moves_the_decoder():
    """The decoder changes by exactly one optimizer step on the reconstruction loss: the
    adversarial phases must not touch it."""
    config = tiny_config("aae", **AAE)
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    x = data.preprocess(dataset.train.images[:16], jax.random.key(0), 17, "dynamic", False)
    batch = {"x": x, "y": dataset.train.labels[:16]}
    tx = optim.make(config.optimizer, 1, 1)
    state = model.init_state(jax.random.key(1), batch, tx)
    new_state, step_metrics = model.train_step(state, batch, jax.random.key(2), tx)

    def recon_loss(autoencoder):
        return jnp.mean(model.recon_terms(autoencoder, model.encode(autoencoder, x), x)[0])

    autoencoder = {k: state.params[k] for k in ("encoder", "decoder")}
    grads = jax.grad(recon_loss)(autoencoder)
    updates, _ = tx.update(grads, tx.init(autoencoder), autoencoder)
    expected = jax.tree.map(jnp.add, autoencoder, updates)["decoder"]
    for a, b in zip(
        jax.tree.leaves(new_state.params["decoder"]), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The discriminator and the encoder moved too, and the step was counted once.
    assert int(new_state.step) == 1
    for part in ("encoder", "discriminator"):
        moved = jax.tree.map(
            lambda a, b: jnp.any(a != b), state.params[part], new_state.params[part]
        )
        assert any(jax.tree.leaves(moved)), part
    assert {"recon_nll", "disc_loss", "gen_loss", "loss"} <= set(step_metrics)


def test_aae_learns_and_resumes(tmp_path):
    config = tiny_config("aae", **AAE)
    assert_resume_matches(config, tmp_path)
    rows = metrics.latest_by_epoch(str(tmp_path / "full" / "metrics.jsonl"), "train")
    losses = [rows[e]["loss"] for e in sorted(rows)]
    assert losses[-1] < losses[0]
    assert {"disc_loss", "gen_loss", "recon_nll"} <= set(rows[1])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.prior": "uniform"}, "must be one of normal, mixture, swiss_roll"),
        ({"model.prior": "swiss_roll", "model.latent_dim": 3}, "latent_dim=2"),
        ({"model.generator_steps": 0}, "generator_steps=0"),
        ({"model.disc_learning_rate_factor": 0.0}, "disc_learning_rate_factor"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_config("aae", **{**AAE, **overrides}))
