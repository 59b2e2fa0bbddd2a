"""Evaluation: the IWAE estimate against a closed-form log p(x), PCA against its eigenvalues,
embedding metrics against a known-good embedding, and experiments.evaluate end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn import datasets, decomposition

from autoencoders import baselines, data, density, evaluation, models, training
from configs import common
from tests import helpers

# ---------------------------------------------------------------------------------------------
# Density: a linear-Gaussian VAE, whose log p(x) is known in closed form
# ---------------------------------------------------------------------------------------------

LATENT, SIGMA = 2, 0.5
TOY = data.DataSpec(name="toy", shape=(2, 2, 1), num_levels=256, num_classes=0, kind="dequantized")


def linear_gaussian_vae(seed: int = 0):
    """A real `vae` model with linear encoder and decoder (no hidden layers) and a Gaussian
    likelihood of fixed σ: p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I), so
    log p(x) = log N(x; b, WWᵀ + σ²I). q(z|x) is deliberately not the exact posterior (mean shrunk
    by 0.7, variance inflated by e^0.5), so the bound is loose at k = 1."""
    config = common.base_config()
    config.model.latent_dim = LATENT
    config.likelihood.name, config.likelihood.sigma = "gaussian", SIGMA
    config.network.hidden = ()
    model = models.make(config, TOY)
    params = model.init(jax.random.key(seed), {"x": jnp.zeros((1, *TOY.shape))})
    rng = np.random.default_rng(seed)
    dim = TOY.num_pixels
    w, b = rng.normal(size=(dim, LATENT)), rng.normal(size=dim) * 0.3
    post_cov = np.linalg.inv(np.eye(LATENT) + w.T @ w / SIGMA**2)
    mean_map = 0.7 * w @ post_cov / SIGMA**2  # x − b -> shrunk posterior mean, (D, d)
    params["decoder"]["params"]["out"] = {"kernel": jnp.asarray(w.T), "bias": jnp.asarray(b)}
    params["encoder"]["params"]["out"] = {
        "kernel": jnp.asarray(np.concatenate([mean_map, np.zeros((dim, LATENT))], 1)),
        "bias": jnp.asarray(np.concatenate([-b @ mean_map, np.log(np.diag(post_cov)) + 0.5])),
    }
    n = 500
    x = rng.normal(size=(n, LATENT)) @ w.T + b + SIGMA * rng.normal(size=(n, dim))
    exact = stats.multivariate_normal(b, w @ w.T + SIGMA**2 * np.eye(dim)).logpdf(x)
    return model, params, jnp.asarray(x.reshape(-1, *TOY.shape), jnp.float32), exact


def test_importance_sampling_converges_to_exact_log_likelihood():
    model, params, x, exact = linear_gaussian_vae()
    y = jnp.full((x.shape[0],), -1, jnp.int32)
    estimates = density.importance_sampled_log_likelihood(
        model, params, x, y, jax.random.key(1), 5000, ks=(1, 10, 100, 1000), sample_chunk=512
    )
    ks = (1, 10, 100, 1000, 5000)
    # k = 1 is a one-sample ELBO: clearly below log p(x). k = 5000 is within Monte Carlo error of
    # log p(x) per example (the largest error seen is 0.08 nats) and on average.
    assert np.mean(estimates[1]) < np.mean(exact) - 0.5
    np.testing.assert_allclose(estimates[5000], exact, atol=0.15)
    assert abs(np.mean(estimates[5000]) - np.mean(exact)) < 0.01
    # The estimate does not decrease with k: E[log p̂_k] rises with k. Consecutive k are compared
    # on the same examples (paired), allowing 3 standard errors of Monte Carlo noise; where the
    # bias dominates (small k) the rise itself must exceed 3 standard errors.
    for k_small, k_large in zip(ks, ks[1:], strict=False):
        rise = estimates[k_large] - estimates[k_small]
        stderr = rise.std(ddof=1) / np.sqrt(len(rise))
        assert rise.mean() > -3 * stderr, (k_small, k_large, rise.mean(), stderr)
        if k_large <= 100:
            assert rise.mean() > 3 * stderr, (k_small, k_large, rise.mean(), stderr)


def test_importance_sampling_is_repeatable_and_independent_of_batching():
    model, params, x, _ = linear_gaussian_vae()
    y = jnp.full((x.shape[0],), -1, jnp.int32)

    x, y = x[:100], y[:100]

    def run(example_batch, block_size):
        return density.importance_sampled_log_likelihood(
            model, params, x, y, jax.random.key(3), 300, (10,), 64, example_batch, block_size
        )

    a, b = run(100, 0), run(7, 25)
    for k in (10, 300):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5)
    np.testing.assert_array_equal(a[300], run(100, 0)[300])


def test_active_units_counts_dimensions_with_varying_means():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(1000, 4)) * np.array([1.0, 0.5, 0.05, 0.0])  # variances 1, .25, .0025
    result = density.active_units(means, threshold=0.01)
    assert (result["count"], result["of"]) == (2, 4)
    assert "unit" in result


# ---------------------------------------------------------------------------------------------
# Dimensionality reduction, manifold learning, representation
# ---------------------------------------------------------------------------------------------


def test_pca_error_on_its_training_set_is_the_sum_of_discarded_eigenvalues():
    rng = np.random.default_rng(0)
    n, dim, kept = 300, 12, 4
    x = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
    errors = baselines.pca_reconstruction_errors(x, x, kept)
    # sklearn's explained_variance_ divides by N − 1; the mean squared error divides by N.
    eigenvalues = decomposition.PCA().fit(x).explained_variance_
    np.testing.assert_allclose(errors.mean(), (n - 1) / n * eigenvalues[kept:].sum(), rtol=1e-9)


def test_embedding_metrics_rank_a_good_embedding_above_a_shuffled_one():
    points, labels = datasets.make_blobs(n_samples=300, centers=5, cluster_std=1.5, random_state=0)
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))[0][:2]
    original = points @ rotation + 0.01 * np.random.default_rng(1).normal(size=(300, 10))
    shuffled = points[np.random.default_rng(2).permutation(300)]
    good = baselines.embedding_quality(original, points, labels)
    bad = baselines.embedding_quality(original, shuffled, labels)
    for metric in ("trustworthiness", "continuity", "knn_accuracy"):
        assert good[metric]["value"] > bad[metric]["value"] + 0.2, metric
        assert good[metric]["unit"]
    assert good["trustworthiness"]["value"] > 0.99


def test_probes_separate_informative_from_uninformative_features():
    features, labels = datasets.make_blobs(
        n_samples=400, centers=3, cluster_std=0.5, random_state=0
    )
    noise = np.random.default_rng(0).normal(size=features.shape)
    informative = baselines.probe_accuracies(
        features[:300], labels[:300], features[300:], labels[300:]
    )
    uninformative = baselines.probe_accuracies(noise[:300], labels[:300], noise[300:], labels[300:])
    for probe in ("linear_probe", "knn"):
        assert informative[probe]["value"] > 0.95  # separable classes
        assert uninformative[probe]["value"] < 0.6  # chance is 1/3


@helpers.requires_shared_data
@pytest.mark.slow
def test_pca_30_on_mnist_matches_hinton_and_salakhutdinov():
    config = common.base_config()
    config.data.name, config.data.data_dir = "mnist", helpers.shared_tfds_dir()
    dataset = data.load(config.data)
    train, test = (np.asarray(s.images) / 255.0 for s in (dataset.train, dataset.test))
    errors = baselines.pca_reconstruction_errors(train, test, 30)
    assert abs(errors.mean() - 13.87) < 0.02  # squared error per image, Science 2006 Table


# ---------------------------------------------------------------------------------------------
# A run end to end
# ---------------------------------------------------------------------------------------------

SMALL = evaluation.Options(
    num_samples=40,
    report_ks=(1, 8),
    sample_chunk=16,
    manifold_examples=100,
    probe_train_examples=300,
    probe_test_examples=100,
)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("vae"))
    training.train_and_evaluate(helpers.tiny_config("vae"), workdir)
    return workdir


def _quantities(node, path=""):
    """Every {"value": ...} leaf of an eval.json, with its path."""
    if isinstance(node, dict) and "value" in node:
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _quantities(v, f"{path}/{k}")


def test_evaluate_command_writes_eval_json_with_units_and_figures(vae_run):
    flags = [
        f"--workdir={vae_run}",
        f"--num_samples={SMALL.num_samples}",
        f"--report_ks={','.join(map(str, SMALL.report_ks))}",
        f"--sample_chunk={SMALL.sample_chunk}",
        f"--manifold_examples={SMALL.manifold_examples}",
        f"--probe_train_examples={SMALL.probe_train_examples}",
        f"--probe_test_examples={SMALL.probe_test_examples}",
    ]
    subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", *flags], check=True, cwd=helpers.REPO
    )
    with open(os.path.join(vae_run, "eval.json")) as f:
        results = json.load(f)
    quantities = dict(_quantities(results))
    for path, q in quantities.items():
        assert q["unit"], path
        assert np.isfinite(q["value"]), path
    density_part = results["density"]
    assert density_part["nll"]["num_samples"] == 40 and density_part["nll"]["stderr"] > 0
    assert "nats per image" in density_part["nll"]["unit"]
    # The IWAE estimate sits below the one-sample bound; k = 1 is an ELBO estimate.
    assert density_part["nll"]["value"] <= density_part["nll_by_k"]["1"]["value"]
    assert 0 <= density_part["active_units"]["count"] <= 2
    assert results["reduction"]["pca_sq_err"]["value"] > 0
    assert {"model latent", "pca", "isomap", "tsne"} <= set(results["manifold"])
    assert set(results["representation"]) >= {"latent", "pca_2", "pixels"}
    expected = {"reconstructions", "interpolation", "samples", "manifold", "latent_map"}
    written = {os.path.splitext(os.path.basename(f))[0] for f in results["figures"]}
    assert expected | {"prior_vs_codes"} == written
    for figure in results["figures"]:
        assert os.path.getsize(os.path.join(vae_run, figure)) > 1000
    # The per-image values behind the density part's means, of the same checkpoint.
    each = evaluation.read_per_image(vae_run, results["epoch"])
    assert each["nll"].mean() == pytest.approx(density_part["nll"]["value"])
    assert each["nll_k1"].mean() == pytest.approx(density_part["nll_by_k"]["1"]["value"])
    assert f"nll_k{density_part['nll']['num_samples']}" not in each  # that is `nll` itself
    assert each["neg_elbo"].mean() == pytest.approx(density_part["neg_elbo"]["value"], rel=1e-5)
    assert len(each["index"]) == len(each["nll"]) == density_part["nll"]["num_images"]
    assert evaluation.read_per_image(vae_run, results["epoch"] + 1) is None  # another epoch's

    # Repeatable: the same options and seed give the same numbers, here in another process.
    again = evaluation.evaluate_run(vae_run, dataclasses.replace(SMALL, parts=evaluation.PARTS[:4]))
    numbers = [p for p in dict(_quantities(again)) if "seconds" not in p]
    assert len(numbers) > 20
    assert all(dict(_quantities(again))[p]["value"] == quantities[p]["value"] for p in numbers)


def test_partial_re_evaluation_keeps_the_other_parts_of_the_same_checkpoint(vae_run):
    path = os.path.join(vae_run, "eval.json")
    first = evaluation.evaluate_run(vae_run, dataclasses.replace(SMALL, parts=("reduction",)))
    fewer_samples = dataclasses.replace(SMALL, parts=("density",), num_samples=20, report_ks=(1,))
    evaluation.evaluate_run(vae_run, fewer_samples)
    with open(path) as f:
        on_disk = json.load(f)
    assert on_disk["density"]["nll"]["num_samples"] == 20  # redone
    assert on_disk["reduction"] == json.loads(json.dumps(first["reduction"]))  # kept
    assert on_disk["carried_over"]["reduction"]["parts"] == ["reduction"]  # with its options
    assert "density" not in on_disk["carried_over"]

    # An eval.json of another checkpoint is not mixed in.
    on_disk["epoch"] = -1
    with open(path, "w") as f:
        json.dump(on_disk, f)
    third = evaluation.evaluate_run(vae_run, dataclasses.replace(SMALL, parts=("reduction",)))
    assert "density" not in third and "carried_over" not in third
    assert not os.path.exists(path + ".tmp")


def test_deterministic_autoencoder_claims_no_likelihood(tmp_path):
    workdir = str(tmp_path)
    training.train_and_evaluate(helpers.tiny_config("ae", **{"train.num_epochs": 1}), workdir)
    options = dataclasses.replace(SMALL, parts=("density", "figures"))
    results = evaluation.evaluate_run(workdir, options)
    density_part = results["density"]
    assert "nll" not in density_part and "not estimated" in density_part["log_likelihood"]
    assert "sq_err" in density_part and "recon_nll" in density_part
    each = evaluation.read_per_image(workdir, results["epoch"])
    assert set(each) >= {"index", "sq_err", "recon_nll"} and "nll" not in each
    written = {os.path.basename(f) for f in results["figures"]}
    assert {"reconstructions.png", "interpolation.png", "latent_map.png"} == written


def test_bernoulli_on_grey_levels_is_labelled_cross_entropy():
    config = helpers.tiny_config("vae", "bernoulli", **{"data.binarization": "none"})
    model = models.make(config, data.describe(config.data))
    params = model.init(jax.random.key(0), {"x": jnp.zeros((1, *model.spec.shape))})
    x = jax.random.uniform(jax.random.key(1), (6, *model.spec.shape))
    y = jnp.zeros((6,), jnp.int32)
    options = evaluation.Options(num_samples=4, report_ks=(1,))
    result, _ = density.density(model, params, x, y, jax.random.key(2), options)
    assert "nll" not in result and "neg_elbo" not in result
    assert "NOT a log-likelihood" in result["marginal_xent"]["unit"]
    assert "cross-entropy" in result["xent_plus_kl"]["unit"]
