"""Conditional VAE: labels required, the bound conditioned on y, the decoder driven by the label."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from autoencoders import data, metrics, models, networks, training
from autoencoders import workdir as workdirs
from autoencoders.data import DataSpec
from tests.helpers import assert_resume_matches, requires_shared_data, tiny_config


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    """A short CVAE run on the digits, cut and resumed; (config, workdir of the full run)."""
    tmp_path = tmp_path_factory.mktemp("cvae")
    config = tiny_config("cvae", **{"train.num_epochs": 8})
    assert_resume_matches(config, tmp_path)
    return config, tmp_path / "full"


def test_cvae_learns_and_resumes(cvae_run):
    _, workdir = cvae_run
    rows = metrics.latest_by_epoch(str(workdir / "metrics.jsonl"), "train")
    losses = [rows[e]["loss"] for e in sorted(rows)]
    assert losses[-1] < losses[0] - 2.0


def test_decoded_digit_follows_the_label(cvae_run):
    """One set of z decoded under each label: what the label changes in the mean image (its
    deviation from the average over labels) looks most like its own class's deviation from the
    average digit. A decoder that ignored the label would change nothing."""
    config, workdir = cvae_run
    _, model, params, _ = workdirs.restore_params(str(workdir))
    train = data.load(config.data).train
    images = np.asarray(train.images, np.float32).reshape(train.size, -1) / 16
    labels = np.asarray(train.labels)
    class_means = np.stack([images[labels == k].mean(axis=0) for k in range(10)])

    z = jax.random.normal(jax.random.key(0), (50, model.latent_dim))
    decoded = np.stack(
        [
            np.asarray(model.decode_mean(params, z, model.one_hot(jnp.full((50,), k))))
            .reshape(50, -1)
            .mean(axis=0)
            for k in range(10)
        ]
    )
    label_effect = decoded - decoded.mean(axis=0)
    class_effect = class_means - class_means.mean(axis=0)
    assert np.abs(label_effect).mean() > 0.01
    similarity = np.corrcoef(np.concatenate([label_effect, class_effect]))[:10, 10:]
    assert np.sum(np.argmax(similarity, axis=1) == np.arange(10)) >= 9


def test_bound_depends_on_the_label(cvae_run):
    """The bound on −log p(x|y) is lower under the true label than under a wrong one."""
    config, workdir = cvae_run
    _, model, params, _ = workdirs.restore_params(str(workdir))
    test = data.load(config.data).test
    x = data.preprocess(test.images, jax.random.key(1), 17, "dynamic", False)
    true = model.loss(params, {"x": x, "y": test.labels}, jax.random.key(2))[1]["neg_elbo"]
    wrong = model.loss(params, {"x": x, "y": (test.labels + 1) % 10}, jax.random.key(2))[1]
    assert float(jnp.mean(wrong["neg_elbo"])) > float(jnp.mean(true)) + 1.0


def test_cvae_refuses_data_without_labels():
    unlabelled = DataSpec("frey_face", (28, 20, 1), 256, 0, "grey")
    with pytest.raises(ValueError, match="needs class labels"):
        models.make(tiny_config("cvae"), unlabelled)


@requires_shared_data
def test_cvae_config_on_unlabelled_tfds_data_is_refused_early():
    config = tiny_config("cvae")
    config.data.name = "binarized_mnist"  # Larochelle's binarized MNIST has no labels
    with pytest.raises(ValueError, match="needs class labels"):
        training.check_config(config)


def test_conditioned_layer_is_a_dense_layer_on_the_concatenation_computed_once_per_image():
    """networks.ConditionedDense has nn.Dense's parameters (same init from the same key) and
    output on concatenate([h, cond]); vmapped over labels with h shared, h's product is not
    repeated per label (the compiled program does fewer flops than the concatenation)."""
    h = jax.random.uniform(jax.random.key(0), (8, 64))
    cond = jax.nn.one_hot(jnp.arange(8) % 10, 10)
    dense, split = nn.Dense(32), networks.ConditionedDense(32)
    params = dense.init(jax.random.key(1), jnp.concatenate([h, cond], -1))
    jax.tree.map(np.testing.assert_array_equal, params, split.init(jax.random.key(1), h, cond))
    np.testing.assert_allclose(
        split.apply(params, h, cond), dense.apply(params, jnp.concatenate([h, cond], -1)), atol=1e-5
    )

    def per_label(apply):
        labels = jax.nn.one_hot(jnp.arange(10), 10)[:, None].repeat(len(h), 1)  # (10, B, 10)
        return jax.jit(jax.vmap(apply)).lower(labels).compile().cost_analysis()

    concatenated = per_label(lambda c: dense.apply(params, jnp.concatenate([h, c], -1)))
    shared = per_label(lambda c: split.apply(params, h, c))
    flops = [c["flops"] if isinstance(c, dict) else c[0]["flops"] for c in (concatenated, shared)]
    assert flops[1] < 0.3 * flops[0]
