"""The clustering adversarial autoencoder: its prior over [one-hot cluster, style], its code,
its two adversaries, config errors, the reproduction's scoring, and clusters that carry the label
after a short run on the embedded digits."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, metrics, models, priors, training
from tests.family_helpers import tiny_family_config
from tests.helpers import assert_resume_matches, train_epochs

REPO = pathlib.Path(__file__).resolve().parents[1]


def _model(**overrides):
    config = tiny_family_config("aae_cluster", **overrides)
    dataset = data.load(config.data)
    return config, dataset, models.make(config, dataset.spec)


def _scoring():
    """configs/reproductions/aae_clustering.py as a module (the reproduction's measure)."""
    path = REPO / "configs" / "reproductions" / "aae_clustering.py"
    spec = importlib.util.spec_from_file_location("aae_clustering", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prior_draws_a_uniform_one_hot_cluster_and_a_standard_normal_style():
    prior = priors.CategoricalAndNormal(num_categories=4, style_dim=3)
    draws = np.asarray(prior.sample(jax.random.key(0), 40_000))
    assert draws.shape == (40_000, 7)
    one_hot, style = draws[:, :4], draws[:, 4:]
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    np.testing.assert_array_equal(one_hot.sum(1), 1.0)
    np.testing.assert_allclose(one_hot.mean(0), 0.25, atol=0.01)
    np.testing.assert_allclose(style.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(style.std(0), 1.0, atol=0.02)
    with pytest.raises(ValueError, match="not labels"):
        prior.sample(jax.random.key(0), 3, jnp.zeros(3, jnp.int32))


def test_code_is_cluster_probabilities_then_style_and_the_decoder_takes_both():
    config, dataset, model = _model()
    k, style = config.model.num_clusters, config.model.latent_dim
    assert model.latent_dim == k + style
    x = data.preprocess(dataset.train.images[:32], jax.random.key(0), 17, "none", False)
    params = model.init(jax.random.key(1), {"x": x, "y": dataset.train.labels[:32]})
    codes = model.encode(params, x)
    assert codes.shape == (32, k + style)
    probs = np.asarray(model.cluster_probs(codes))
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert model.cluster_heads(params).shape == (k, *dataset.spec.shape)
    assert model.sample(params, jax.random.key(2), 5).shape == (5, *dataset.spec.shape)
    # Two adversaries: the totals are the sums of their parts.
    terms = model.adversarial_terms(params, x, None, jax.random.key(3))
    for name in ("disc_loss", "gen_loss"):
        np.testing.assert_allclose(
            terms[name], terms[f"cluster_{name}"] + terms[f"style_{name}"], rtol=1e-6
        )
    # The generator phase adds λ times the KL of the batch's mean cluster probabilities from
    # uniform, and logs both.
    mean_probs = probs.mean(0)
    balance = np.sum(mean_probs * np.log(mean_probs * k))
    objective, logged = model.generator_objective(params, x, None, jax.random.key(3))
    np.testing.assert_allclose(logged["cluster_balance"], balance, rtol=1e-4)
    np.testing.assert_allclose(logged["gen_loss"], np.mean(terms["gen_loss"]), rtol=1e-6)
    np.testing.assert_allclose(
        objective, logged["gen_loss"] + config.model.balance_weight * balance, rtol=1e-5
    )
    assert set(params["discriminator"]) == {"cluster", "style"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.num_clusters": 1}, r"config.model.num_clusters=1: must be >= 2"),
        ({"model.balance_weight": -1.0}, r"config.model.balance_weight=-1.0: must be >= 0"),
        ({"model.prior": "mixture"}, r"config.model.prior is the aae family's"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_family_config("aae_cluster", **overrides))


def test_a_config_without_num_clusters_names_the_field():
    config = tiny_family_config("aae_cluster")
    with config.unlocked():
        del config.model["num_clusters"]
    with pytest.raises(ValueError, match=r"config.model.num_clusters.*configs/aae_cluster.py"):
        training.check_config(config)


def test_clusters_take_the_label_of_their_most_confident_image_or_their_majority():
    scoring = _scoring()
    clusters = np.array([0, 0, 0, 1, 1, 3])
    confidence = np.array([0.5, 0.9, 0.6, 0.7, 0.8, 0.4])
    labels = np.array([7, 2, 7, 1, 1, 5])
    # Cluster 0's most confident image is a 2, its majority 7; cluster 2 is empty.
    np.testing.assert_array_equal(
        scoring.head_labels(clusters, confidence, labels, 4), [2, 1, -1, 5]
    )
    np.testing.assert_array_equal(scoring.majority_labels(clusters, labels, 4), [7, 1, -1, 5])


def test_confidence_ranks_images_whose_probabilities_round_to_one():
    """q(y|x) is exactly 1.0 in float32 for both images; their logits still tell them apart."""

    class Logits:
        cluster_logits = staticmethod(lambda params, x: x)

    logits = jnp.array([[30.0, 0.0, 0.0], [0.0, 40.0, 1.0], [0.0, 45.0, 0.0]])
    assert np.all(jax.nn.softmax(logits).max(1) == 1.0)
    clusters, log_odds = _scoring().assign_clusters(Logits(), None, logits)
    np.testing.assert_array_equal(clusters, [0, 1, 1])
    np.testing.assert_allclose(log_odds, [30 - np.log(2), 40 - np.log(1 + np.e), 45 - np.log(2)])


def test_clustering_learns_and_resumes(tmp_path):
    config = tiny_family_config("aae_cluster", **{"train.num_epochs": 2})
    assert_resume_matches(config, tmp_path)
    rows = metrics.latest_by_epoch(str(tmp_path / "full" / "metrics.jsonl"), "train")
    assert rows[2]["recon_nll"] < rows[1]["recon_nll"]
    assert {"disc_loss", "gen_loss", "cluster_balance"} <= set(rows[1])


def _clusters_after_training(balance_weight: float, num_epochs: int = 20) -> np.ndarray:
    """Each training digit's cluster after `num_epochs` of the compiled epoch."""
    config = tiny_family_config("aae_cluster", **{"model.balance_weight": balance_weight})
    model, _, params, x, _ = train_epochs(config, num_epochs)
    return np.asarray(model.cluster_probs(model.encode(params, x))).argmax(1)


def test_the_balance_term_keeps_every_cluster_in_use_where_the_papers_objective_collapses():
    """A discriminator judges one code at a time, so without the balance term the digits end in
    a few of the 16 clusters (measured: 2); with it (configs/aae_cluster.py's weight) they
    spread over all 16."""
    collapsed = _clusters_after_training(0.0)
    balanced = _clusters_after_training(10.0)
    assert len(np.unique(collapsed)) <= 4
    assert len(np.unique(balanced)) == tiny_family_config("aae_cluster").model.num_clusters
