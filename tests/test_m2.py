"""Semi-supervised M2: the labelled subset, the bounds, the objective, the training hook."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from autoencoders import data, epoch, metrics, models, training
from autoencoders.models.m2 import M2
from tests.helpers import assert_resume_matches, tiny_config

SEMI_SUPERVISED = {
    "model.num_labels": 100,
    "model.labelled_batch_size": 50,
    "model.alpha_over_n": 0.1,
}


def _model_and_batch(num_labels=100, batch_size=8):
    config = tiny_config("m2", **{**SEMI_SUPERVISED, "model.num_labels": num_labels})
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    x = data.preprocess(dataset.train.images[:batch_size], jax.random.key(0), 17, "dynamic", False)
    batch = {"x": x, "y": dataset.train.labels[:batch_size]}
    params = model.init(jax.random.key(1), batch)
    return model, params, batch


# --- the labelled subset ------------------------------------------------------------------------


def test_labelled_subset_is_balanced_and_fixed_by_seed():
    labels = np.random.default_rng(0).integers(0, 10, 5000)
    subset = data.labelled_subset(labels, 100, 10, seed=3)
    assert len(np.unique(subset)) == 100 and np.all(np.diff(subset) > 0)
    np.testing.assert_array_equal(np.bincount(labels[subset], minlength=10), 10)
    np.testing.assert_array_equal(subset, data.labelled_subset(labels, 100, 10, seed=3))
    assert not np.array_equal(subset, data.labelled_subset(labels, 100, 10, seed=4))


def test_labelled_subset_errors():
    labels = np.repeat(np.arange(10), 5)
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        data.labelled_subset(labels, 105, 10, seed=0)
    with pytest.raises(ValueError, match="needs 6 examples of class 0"):
        data.labelled_subset(labels, 60, 10, seed=0)


# --- the bounds ---------------------------------------------------------------------------------


def test_unlabelled_bound_is_the_q_weighted_sum_of_labelled_bounds_plus_entropy():
    model, params, batch = _model_and_batch()
    rng = jax.random.key(2)
    # Independently: the labelled bound under each label k (the key the model gives class k),
    # weighted by q(k|x), minus the entropy of q(y|x).
    keys = jax.random.split(rng, 10)
    per_label = np.stack(
        [
            np.asarray(
                model.labelled_terms(params, batch["x"], jnp.full((8,), k), keys[k])["neg_elbo_xy"]
            )
            for k in range(10)
        ]
    )  # (K, B)
    logits = np.asarray(model.classifier.apply(params["classifier"], batch["x"]), np.float64)
    q = special.softmax(logits, axis=1).T
    expected = (q * per_label).sum(axis=0) - special.entr(q).sum(axis=0)

    terms = model.eval_terms(params, batch, rng)
    np.testing.assert_allclose(terms["neg_elbo"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        model.unlabelled_terms(params, batch["x"], rng)["neg_elbo"], expected, rtol=1e-5
    )
    # Its parts add up, and the label term is KL(q(y|x) || uniform) >= 0.
    np.testing.assert_allclose(terms["neg_elbo"], terms["recon_nll"] + terms["kl"], rtol=1e-5)
    np.testing.assert_allclose(terms["kl_y"], (q * np.log(q * 10)).sum(axis=0), atol=1e-5)
    # The labelled bound at the true label is the k = y row; it includes −log p(y) = log 10.
    y = np.asarray(batch["y"])
    np.testing.assert_allclose(terms["neg_elbo_xy"], per_label[y, np.arange(8)], rtol=1e-5)


def test_labelled_bound_is_the_cvae_bound_plus_log_num_classes():
    model, params, batch = _model_and_batch()
    cvae = models.make(tiny_config("cvae"), model.spec)
    cvae_terms = cvae.loss(params, batch, jax.random.key(3))[1]  # the same encoder and decoder
    m2_terms = model.labelled_terms(params, batch["x"], batch["y"], jax.random.key(3))
    np.testing.assert_allclose(
        m2_terms["neg_elbo_xy"], cvae_terms["neg_elbo"] + np.log(10), rtol=1e-6
    )


# --- the objective ------------------------------------------------------------------------------


def test_semi_supervised_loss_weights_the_parts_and_ignores_unlabelled_labels():
    model, params, batch = _model_and_batch()
    x_labelled, y_labelled = batch["x"][:4], batch["y"][:4]
    full = {**batch, "x_labelled": x_labelled, "y_labelled": y_labelled}
    full["labelled_fraction"] = jnp.float32(0.25)
    rng = jax.random.key(4)
    loss, metrics_ = model.loss(params, full, rng)

    unlabelled_rng, labelled_rng = jax.random.split(rng)
    u = model.unlabelled_terms(params, batch["x"], unlabelled_rng)["neg_elbo"].mean()
    labelled = model.labelled_terms(params, x_labelled, y_labelled, labelled_rng)
    expected = (
        0.75 * u + 0.25 * labelled["neg_elbo_xy"].mean() + 0.1 * labelled["class_xent"].mean()
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert float(metrics_["labelled_class_xent"]) == pytest.approx(
        float(labelled["class_xent"].mean()), rel=1e-6
    )
    # The unlabelled minibatch's labels are hidden from the model.
    hidden = {**full, "y": jnp.full_like(batch["y"], -1)}
    assert float(model.loss(params, hidden, rng)[0]) == pytest.approx(float(loss), rel=1e-6)


def test_every_label_known_is_the_cvae_bound_plus_classification():
    model, params, batch = _model_and_batch(num_labels=0)
    assert model.labelled_batch_size == 0
    loss, _ = model.loss(params, batch, jax.random.key(5))
    labelled = model.labelled_terms(params, batch["x"], batch["y"], jax.random.key(5))
    expected = np.mean(labelled["neg_elbo_xy"] + 0.1 * labelled["class_xent"])
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)


def test_the_classifier_learns_from_the_unlabelled_bound():
    model, params, batch = _model_and_batch()

    def unlabelled(classifier):
        terms = model.unlabelled_terms({**params, "classifier": classifier}, batch["x"], rng)
        return terms["neg_elbo"].mean()

    rng = jax.random.key(6)
    grads = jax.grad(unlabelled)(params["classifier"])
    assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads)) > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.num_labels": 105}, "multiple of the 10 classes"),
        ({"model.num_labels": -2}, "num_labels=-2"),
        ({"model.beta": 2.0}, "beta must be 1"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_config("m2", **{**SEMI_SUPERVISED, **overrides}))


def test_config_without_m2_fields_is_refused():
    with pytest.raises(ValueError, match="num_labels"):
        training.check_config(tiny_config("m2"))


# --- the training hook --------------------------------------------------------------------------


class _LabelledBatchProbe(M2):
    """M2 with a step that reports, as scalars, what the epoch put in the batch."""

    multi_phase = True  # its own `train_step`: the probe below

    def __init__(self, config, spec, subset_x, subset_y):
        super().__init__(config, spec)
        self.subset_x, self.subset_y = subset_x, subset_y

    def train_step(self, state, batch, rng, tx):
        x = batch["x_labelled"].reshape(self.labelled_batch_size, 1, -1)
        distances = jnp.sum((x - self.subset_x.reshape(1, len(self.subset_x), -1)) ** 2, axis=-1)
        nearest = jnp.argmin(distances, axis=1)
        return state, {
            "off_subset": jnp.max(jnp.min(distances, axis=1)),
            "label_mismatches": jnp.sum(batch["y_labelled"] != self.subset_y[nearest]),
            "repeats": jnp.sum(nearest[:, None] == nearest[None, :]) - self.labelled_batch_size,
            "fraction": batch["labelled_fraction"],
            "unlabelled_batch": batch["x"].shape[0],
        }


def test_each_step_gets_a_labelled_minibatch_from_the_subset():
    overrides = {"model.num_labels": 20, "model.labelled_batch_size": 7}
    config = tiny_config("m2", **{**SEMI_SUPERVISED, **overrides})
    config.data.binarization = "none"  # images as they are, to find them in the subset
    train = data.load(config.data).train
    subset = data.labelled_subset(np.asarray(train.labels), 20, 10, seed=0)
    subset_x = train.images[subset].astype(jnp.float32) / 16
    probe = _LabelledBatchProbe(config, data.describe(config.data), subset_x, train.labels[subset])
    np.testing.assert_array_equal(probe.training_context(np.asarray(train.labels), 0), subset)
    train_epoch = epoch.make_train_epoch(probe, None, config, 5, subset)
    _, out = train_epoch(jnp.zeros(()), train.images, train.labels, jax.random.key(0))
    assert float(out["off_subset"]) == 0.0  # every labelled image is one of the subset's
    assert float(out["label_mismatches"]) == 0.0  # with its own label
    assert float(out["repeats"]) == 0.0  # drawn without replacement within a step
    assert float(out["fraction"]) == pytest.approx(20 / train.size)
    assert float(out["unlabelled_batch"]) == config.train.batch_size


def test_training_without_the_subset_is_refused():
    config = tiny_config("m2", **SEMI_SUPERVISED)
    model = models.make(config, data.describe(config.data))
    batch = {"x": jnp.zeros((4, 8, 8, 1)), "y": jnp.zeros((4,), jnp.int32)}
    with pytest.raises(ValueError, match="labelled"):
        model.add_training_inputs(
            batch, None, batch["x"], batch["y"], jax.random.key(0), lambda x, key: x
        )


# --- training -----------------------------------------------------------------------------------


def test_m2_learns_and_resumes(tmp_path):
    config = tiny_config("m2", **SEMI_SUPERVISED)
    assert_resume_matches(config, tmp_path)
    rows = metrics.latest_by_epoch(str(tmp_path / "full" / "metrics.jsonl"), "train")
    losses = [rows[e]["loss"] for e in sorted(rows)]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_m2_with_100_labels_classifies_digits(tmp_path):
    # The digits have N = 1,438 training images, so the paper's α = 0.1·N gives each labelled
    # example a weight of only 1.4 (60 on MNIST); α/N = 1 brings it nearer to MNIST's balance.
    overrides = {"model.alpha_over_n": 1.0, "train.num_epochs": 40, "train.eval_every": 40}
    config = tiny_config("m2", **{**SEMI_SUPERVISED, **overrides})
    config.network.hidden = (128,)
    final = training.train_and_evaluate(config, str(tmp_path))
    assert final["test/class_error"] < 25.0  # %; chance: 90 % (measured: 15.6 %)
