"""Evaluation of a trained run, along the lecture's four views of an autoencoder.

- **Density**: test log-likelihood by importance sampling (the IWAE estimator, Burda et al. 2016),
  log p(x) ≈ logsumexp_k log w_k − log K with w_k = p(x, z_k) / q(z_k | x), z_k ~ q(z | x); the
  ELBO beside it; active units (Var_x E_q[z_j | x] > 0.01). Deterministic autoencoders claim no
  likelihood: only their reconstruction error is reported.
- **Dimensionality reduction**: squared reconstruction error per image (summed over pixels, mean
  over images: Hinton & Salakhutdinov's unit) of the model and of PCA with as many components.
- **Manifold learning**: 2-D embeddings of test images (the model's latent space, PCA, Isomap,
  t-SNE) scored by trustworthiness, continuity and kNN label accuracy.
- **Representation**: linear-probe and kNN accuracy on latent means, on PCA features of the same
  size and on raw pixels.

`evaluate_run(workdir, options)` does all of it and writes `workdir/eval.json` and
`workdir/figures/*.png`; each part is also a function of arrays, for notebooks.

Images are the model's input as training made it (`data.preprocess` with a fixed key): grey levels
in [0, 1], or binarized / dequantized once. Every number in eval.json carries its unit, and every
random choice comes from `Options.seed`, so the same seed gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn import decomposition, manifold, neighbors, pipeline, preprocessing
from sklearn.linear_model import LogisticRegression

from autoencoders import data, models, plots, priors, training

Array = jax.Array
Params = Any

PARTS = ("density", "reduction", "manifold", "representation", "figures")
SQ_ERR_UNIT = (
    "squared error per image: (x − x̂)² summed over pixels, mean over images; x is the model "
    "input in [0, 1] (Hinton & Salakhutdinov's unit)"
)
ACCURACY_UNIT = "fraction of test examples classified correctly"
# Salts for the evaluation's independent random streams: fold_in(key(seed), salt).
_PREPROCESS_TRAIN, _PREPROCESS_TEST, _DENSITY, _TERMS, _FIGURES = range(5)


@dataclasses.dataclass(frozen=True)
class Options:
    """What to evaluate and how much of it; every field is a flag of `experiments.evaluate`."""

    parts: tuple[str, ...] = PARTS
    seed: int = 0
    # Density: k of the IWAE estimate (Burda et al. use 5000), and smaller k reported beside it
    # (prefixes of the same samples, to show the estimate converging).
    num_samples: int = 5000
    report_ks: tuple[int, ...] = (1, 10, 100, 1000)
    sample_chunk: int = 500  # importance samples drawn at once per example
    # Examples vectorised at once; memory ∝ example_batch·sample_chunk. ~4000 decoder rows per
    # block keep its activations in cache: faster on a CPU than 32 examples (16000 rows); compare
    # `python -m benchmarks.run --benchmarks=is_eval --is_example_batch=32` with the default.
    example_batch: int = 8
    density_examples: int = 0  # test images for the IS estimate; 0 = all
    active_threshold: float = 0.01
    # Manifold learning: test images embedded in 2-D; neighbourhood sizes of the metrics.
    manifold_examples: int = 1000
    neighbors: int = 10  # trustworthiness / continuity
    knn_neighbors: int = 5  # kNN label accuracy (embeddings and probes)
    latent_projection: str = "pca"  # latents of more than 2 dims to 2-D: pca | tsne
    # Representation probes: training and test subsets.
    probe_train_examples: int = 5000
    probe_test_examples: int = 2000

    def __post_init__(self):
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise ValueError(f"parts {sorted(unknown)}: must be among {', '.join(PARTS)}.")
        if self.num_samples <= 0 or self.sample_chunk <= 0 or self.example_batch <= 0:
            raise ValueError("num_samples, sample_chunk and example_batch must be > 0.")
        if any(not 0 < k <= self.num_samples for k in self.report_ks):
            raise ValueError(f"report_ks={self.report_ks}: each must be in 1..num_samples.")
        if self.latent_projection not in ("pca", "tsne"):
            raise ValueError(f"latent_projection={self.latent_projection!r}: pca | tsne.")


def quantity(value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """One number of eval.json, with its unit."""
    return {"value": float(value), "unit": unit, **extra}


def per_image(values: np.ndarray, unit: str) -> dict[str, Any]:
    """Mean over images with its standard error (std over images, ddof=1, / √N)."""
    values = np.asarray(values, np.float64)
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None
    return quantity(values.mean(), unit, stderr=stderr, num_images=len(values))


# ---------------------------------------------------------------------------------------------
# Per-example maps of model functions: one jit, no Python loop over examples
# ---------------------------------------------------------------------------------------------


def map_examples(
    fn: Callable[[Params, dict[str, Array], Array], Any],
    params: Params,
    x: Array,
    y: Array,
    rng: Array,
    batch_size: int,
    block_size: int = 0,
    progress: str = "",
) -> Any:
    """fn(params, batch of one, key) for every example, `batch_size` examples vectorised at once.

    Example i gets the key fold_in(rng, i), so the result depends neither on `batch_size` nor on
    `block_size`: the examples are handed to the compiled map `block_size` at a time (0 = all at
    once), logging `progress` after each block, for long maps such as k = 5000 importance samples.
    """
    n = x.shape[0]
    block_size = block_size or n
    start_time, outputs = time.time(), []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        indices = jnp.arange(start, stop)
        outputs.append(
            _map_examples(fn, params, x[start:stop], y[start:stop], indices, rng, batch_size)
        )
        if progress:
            jax.block_until_ready(outputs[-1])
            logging.info("%s: %d/%d images, %.0f s", progress, stop, n, time.time() - start_time)
    return jax.tree.map(lambda *blocks: jnp.concatenate(blocks), *outputs)


@functools.partial(jax.jit, static_argnums=(0, 6))
def _map_examples(fn, params, x, y, indices, rng, batch_size):
    def one(args):
        x_i, y_i, i = args
        out = fn(params, {"x": x_i[None], "y": y_i[None]}, jax.random.fold_in(rng, i))
        return jax.tree.map(lambda a: a[0], out)

    return jax.lax.map(one, (x, y, indices), batch_size=min(batch_size, x.shape[0]))


def is_conditional(model: models.Model) -> bool:
    """Whether encoder and decoder see the label (CVAE, M2): then log p(x) is log p(x | y)."""
    return type(model).condition is not models.Model.condition


def codes(model: models.Model, params: Params, x: Array, y: Array) -> tuple[Array, Array | None]:
    """(z, cond): the model's code for x (posterior mean for VAEs; given the label y for
    conditional families) and what the decoder is conditioned on (None, or the one-hot y)."""
    cond = model.condition({"x": x, "y": jnp.asarray(y)})
    z = model.encode(params, x) if cond is None else model.encode(params, x, cond)
    return z, cond


def reconstruct(model: models.Model, params: Params, x: Array, y: Array) -> Array:
    """Mean of p(x | z [, y]) at the code of x."""
    z, cond = codes(model, params, x, y)
    return model.decode_mean(params, z, cond)


def encode(model: models.Model, params: Params, x: Array, y: Array, batch_size: int = 500):
    """Codes of every example (`codes`), as numpy (N, latent_dim)."""
    fn = _bound(_encode_one, model)
    return np.asarray(map_examples(fn, params, x, y, jax.random.key(0), batch_size))  # no draws


@functools.lru_cache(maxsize=64)
def _bound(fn: Callable, model: models.Model) -> Callable:
    """functools.partial(fn, model), the same object for the same arguments: `_map_examples`
    is jitted with the function as a static argument, so a fresh partial would recompile."""
    return functools.partial(fn, model)


def _encode_one(model, params, batch, rng):
    del rng
    return codes(model, params, batch["x"], batch["y"])[0]


def _sq_err_one(model, params, batch, rng):
    del rng
    x = batch["x"]
    return jnp.sum((reconstruct(model, params, x, batch["y"]) - x) ** 2, axis=(1, 2, 3))


# ---------------------------------------------------------------------------------------------
# Density
# ---------------------------------------------------------------------------------------------


def is_stochastic(model: models.Model) -> bool:
    """Whether the model has a posterior to importance-sample (VAE-like families)."""
    return hasattr(model, "log_importance_weights")


def importance_sampled_log_likelihood(
    model: models.Model,
    params: Params,
    x: Array,
    y: Array,
    rng: Array,
    num_samples: int,
    ks: Sequence[int] = (),
    sample_chunk: int = Options.sample_chunk,
    example_batch: int = Options.example_batch,
    block_size: int = 1000,
) -> dict[int, np.ndarray]:
    """IWAE estimates of log p(x) per example, in nats per image, for k in `ks` and `num_samples`.

    Samples are drawn `sample_chunk` at a time and folded into a running logsumexp (memory does
    not grow with k); the estimate for a smaller k uses the first k of the same samples. Each
    estimate is a lower bound on log p(x) in expectation, rising to it as k grows.

    Returns {k: (N,) array}.
    """
    ks = tuple(sorted({int(k) for k in ks if 0 < k < num_samples} | {num_samples}))
    one = _importance_sampler(model, ks, min(sample_chunk, num_samples))
    progress = f"importance sampling, k = {num_samples}"
    estimates = map_examples(one, params, x, y, rng, example_batch, block_size, progress)
    estimates = np.asarray(estimates)
    return {k: estimates[:, i] for i, k in enumerate(ks)}


@functools.lru_cache(maxsize=16)
def _importance_sampler(model: models.Model, ks: tuple[int, ...], chunk: int) -> Callable:
    """Per-example IWAE estimates for every k in `ks` (the largest is the sample count).

    Cached, so repeated evaluations reuse one compiled program (the function is a static jit
    argument of `_map_examples`).
    """
    num_chunks = -(-ks[-1] // chunk)
    ks_arr = jnp.asarray(ks)

    def one(params, batch, key):
        def body(acc, c):
            log_w = model.log_importance_weights(params, batch, jax.random.fold_in(key, c), chunk)
            index = c * chunk + jnp.arange(chunk)
            # Row j keeps the samples that count towards k_j (index < k_j), so one pass over
            # the samples gives every k; samples past num_samples are dropped the same way.
            masked = jnp.where(index[None, :, None] < ks_arr[:, None, None], log_w[None], -jnp.inf)
            return jnp.logaddexp(acc, jax.nn.logsumexp(masked, axis=1)), None

        acc0 = jnp.full((len(ks), batch["x"].shape[0]), -jnp.inf)
        acc, _ = jax.lax.scan(body, acc0, jnp.arange(num_chunks))
        return (acc - jnp.log(ks_arr.astype(jnp.float32))[:, None]).T  # (B, len(ks))

    return one


def active_units(latent_means: np.ndarray, threshold: float = 0.01) -> dict[str, Any]:
    """Units whose posterior mean varies over the data: Var_x E_q[z_j | x] > threshold."""
    variances = np.var(np.asarray(latent_means, np.float64), axis=0)
    return {
        "count": int(np.sum(variances > threshold)),
        "of": int(variances.size),
        "threshold": threshold,
        "variances": [float(v) for v in variances],
        "unit": "latent dimensions with Var_x E_q[z_j|x] > threshold (variance in latent units²)",
    }


def term_unit(model: models.Model, name: str) -> str:
    """The unit of one of `model.eval_terms`, by its name (families' own terms included)."""
    term = name.removeprefix("clean_")
    note = " (clean, uncorrupted input)" if term != name else ""
    bounds = {
        model.bound_name: " (one z sample)",
        f"{model.bound_name}_xy": " (−log p(x, y) bound, one z sample)",
        getattr(model, "iw_bound_name", None): " (importance-weighted bound at the training k)",
    }
    if term == model.recon_name or term in bounds:
        return model.units.description + bounds.get(term, "") + note
    known = {
        "kl": "nats per image: KL(q(z|x) || p(z))",
        "kl_y": "nats per image: KL(q(y|x) || p(y))",
        "sq_err": SQ_ERR_UNIT + "; as in training (VAEs: decoded from one sample z ~ q(z|x))",
        "class_error": "% of test images misclassified by argmax q(y|x)",
        "class_xent": "nats per image: −log q(y|x) at the true label",
        "disc_loss": "nats per image: discriminator loss (2·log 2 ≈ 1.386 at chance)",
        "gen_loss": "nats per image: generator loss −log D(f(x))",
        "jacobian_sq_norm": "‖∂h(x)/∂x‖²_F per image (code units² per unit of pixel value²)",
        "code_shift_sq": "E‖h(x) − h(x + ε)‖² per image (code units²)",
    }
    if term in known:
        return known[term] + note
    return f"per-image mean of the {type(model).__name__} term '{term}' (see its module){note}"


def density(
    model: models.Model, params: Params, x: Array, y: Array, rng: Array, options: Options
) -> dict[str, Any]:
    """Test log-likelihood (IWAE, k = options.num_samples) with its standard error, the ELBO,
    the other per-image terms, and active units; for deterministic AEs the terms only."""
    out: dict[str, Any] = {"recon_units": model.units.description}
    terms = map_examples(
        model.eval_terms, params, x, y, jax.random.fold_in(rng, _TERMS), options.example_batch
    )
    for name, values in sorted(terms.items()):
        if name != "loss":  # the training objective; its parts are reported by name
            out[name] = per_image(values, term_unit(model, name))
    if not is_stochastic(model):
        out["log_likelihood"] = (
            "not estimated: a deterministic autoencoder defines no density p(x); "
            "reconstruction terms only"
        )
        return out

    n = x.shape[0] if options.density_examples <= 0 else min(options.density_examples, x.shape[0])
    subset = subset_indices(x.shape[0], n, options.seed)
    estimates = importance_sampled_log_likelihood(
        model,
        params,
        x[subset],
        y[subset],
        jax.random.fold_in(rng, _DENSITY),
        options.num_samples,
        options.report_ks,
        options.sample_chunk,
        options.example_batch,
    )
    # A Bernoulli on grey levels has no normaliser over [0, 1]: the IS estimate of its "marginal"
    # is a cross-entropy too, and is named as one.
    name = "nll" if model.units.is_log_likelihood else "marginal_xent"
    estimated = "−log p(x)"
    if is_conditional(model):  # the label is given: the number is −log p(x | y)
        name, estimated = f"conditional_{name}", "−log p(x | y), given the label"
    unit = f"{model.units.description}; IWAE estimate of {estimated}"
    out[name] = per_image(-estimates[options.num_samples], unit)
    out[name]["num_samples"] = options.num_samples
    # The same images and samples for every k; k = 1 is a one-sample ELBO estimate on them.
    out[f"{name}_by_k"] = {
        str(k): per_image(-v, f"{unit} from the first k of the samples")
        for k, v in estimates.items()
    }
    out["active_units"] = active_units(encode(model, params, x, y), options.active_threshold)
    return out


# ---------------------------------------------------------------------------------------------
# Dimensionality reduction
# ---------------------------------------------------------------------------------------------


def flatten(x: Array | np.ndarray) -> np.ndarray:
    """(N, H, W, C) images -> (N, H·W·C) float64 numpy rows."""
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)


def pca_reconstruction_errors(
    train: np.ndarray, test: np.ndarray, num_components: int
) -> np.ndarray:
    """Per-image squared error (summed over pixels) of PCA fitted on `train`, applied to `test`.

    On its own training set the mean equals the sum of the discarded eigenvalues of the
    covariance with 1/N normalisation, i.e. (N − 1)/N times sklearn's `explained_variance_`.
    """
    pca = decomposition.PCA(n_components=num_components).fit(flatten(train))
    test = flatten(test)
    restored = pca.inverse_transform(pca.transform(test))
    return np.sum((test - restored) ** 2, axis=1)


def reduction(
    model: models.Model, params: Params, x_train: Array, x_test: Array, y_test: np.ndarray
) -> dict[str, Any]:
    """Squared reconstruction error per test image of the model and of PCA of the same size."""
    fn = _bound(_sq_err_one, model)
    model_err = np.asarray(map_examples(fn, params, x_test, y_test, jax.random.key(0), 500))
    pca_err = pca_reconstruction_errors(x_train, x_test, model.latent_dim)
    return {
        "num_components": model.latent_dim,
        "model_sq_err": per_image(model_err, SQ_ERR_UNIT),
        "pca_sq_err": per_image(pca_err, SQ_ERR_UNIT + "; PCA fitted on the training images"),
    }


# ---------------------------------------------------------------------------------------------
# Manifold learning
# ---------------------------------------------------------------------------------------------


def continuity(original: np.ndarray, embedding: np.ndarray, n_neighbors: int) -> float:
    """Continuity (Venna & Kaski 2001): trustworthiness with the two spaces' roles swapped,
    so it penalises original-space neighbours that the embedding tears apart."""
    return float(manifold.trustworthiness(embedding, original, n_neighbors=n_neighbors))


def knn_accuracy_loo(features: np.ndarray, labels: np.ndarray, n_neighbors: int) -> float:
    """Leave-one-out kNN label accuracy within one set of points: each point gets the majority
    label of its `n_neighbors` nearest other points (ties: the smallest label)."""
    nearest = neighbors.NearestNeighbors(n_neighbors=n_neighbors).fit(features)
    votes = labels[nearest.kneighbors(return_distance=False)]  # the point itself excluded
    return float(np.mean(stats.mode(votes, axis=1).mode == labels))


def embedding_quality(
    original: np.ndarray,
    embedding: np.ndarray,
    labels: np.ndarray | None,
    n_neighbors: int = 10,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Trustworthiness, continuity (in [0, 1], higher is better) and kNN label accuracy of a 2-D
    embedding of `original` points (rows)."""
    original, embedding = flatten(original), np.asarray(embedding, np.float64)
    unit = f"in [0, 1], {n_neighbors} neighbours; 1 = neighbourhoods preserved"
    out = {
        "trustworthiness": quantity(
            manifold.trustworthiness(original, embedding, n_neighbors=n_neighbors), unit
        ),
        "continuity": quantity(continuity(original, embedding, n_neighbors), unit),
    }
    if labels is not None and np.all(labels >= 0):
        out["knn_accuracy"] = quantity(
            knn_accuracy_loo(embedding, labels, knn_neighbors),
            f"{ACCURACY_UNIT} ({knn_neighbors}-NN in the embedding, leave-one-out)",
        )
    return out


def baseline_embeddings(x: np.ndarray, seed: int, n_neighbors: int = 10) -> dict[str, np.ndarray]:
    """2-D embeddings of the images by PCA, Isomap and t-SNE (each fitted on these images)."""
    x = flatten(x)
    return {
        "pca": decomposition.PCA(n_components=2).fit_transform(x),
        "isomap": manifold.Isomap(n_neighbors=n_neighbors, n_components=2).fit_transform(x),
        "tsne": manifold.TSNE(n_components=2, init="pca", random_state=seed).fit_transform(x),
    }


def latent_to_2d(latents: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D latents as they are; higher-dimensional ones projected by PCA or t-SNE."""
    latents = np.asarray(latents, np.float64)
    if latents.shape[1] <= 2:
        return latents
    if method == "tsne":
        return manifold.TSNE(n_components=2, init="pca", random_state=seed).fit_transform(latents)
    return decomposition.PCA(n_components=2).fit_transform(latents)


def latent_method_name(latent_dim: int, method: str) -> str:
    return "model latent" if latent_dim <= 2 else f"model latent ({method} to 2-D)"


# ---------------------------------------------------------------------------------------------
# Representation
# ---------------------------------------------------------------------------------------------


def probe_accuracies(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Test accuracy of a linear probe (standardised logistic regression) and of kNN."""
    linear = pipeline.make_pipeline(
        preprocessing.StandardScaler(), LogisticRegression(max_iter=1000)
    )
    knn = neighbors.KNeighborsClassifier(n_neighbors=knn_neighbors)
    return {
        "linear_probe": quantity(
            linear.fit(train_features, train_labels).score(test_features, test_labels),
            f"{ACCURACY_UNIT} (logistic regression on standardised features)",
        ),
        "knn": quantity(
            knn.fit(train_features, train_labels).score(test_features, test_labels),
            f"{ACCURACY_UNIT} ({knn_neighbors}-NN, Euclidean)",
        ),
    }


def representation(
    latents_train: np.ndarray,
    latents_test: np.ndarray,
    x_train: np.ndarray,
    x_test: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    knn_neighbors: int = 5,
) -> dict[str, Any]:
    """Probes on latent means vs PCA features of the same size (fitted on these training
    images) vs raw pixels."""
    x_train, x_test = flatten(x_train), flatten(x_test)
    pca = decomposition.PCA(n_components=latents_train.shape[1]).fit(x_train)
    features = {
        "latent": (latents_train, latents_test),
        f"pca_{latents_train.shape[1]}": (pca.transform(x_train), pca.transform(x_test)),
        "pixels": (x_train, x_test),
    }
    out = {
        name: probe_accuracies(train, y_train, test, y_test, knn_neighbors)
        for name, (train, test) in features.items()
    }
    out["num_train"], out["num_test"] = len(y_train), len(y_test)
    return out


# ---------------------------------------------------------------------------------------------
# A run: restore, preprocess, evaluate every part, write eval.json and figures
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """A restored run and its data as the model sees it."""

    workdir: str
    config: Any
    model: models.Model
    params: Params
    epoch: int
    x_train: Array  # float model inputs (N, H, W, C), preprocessed once with a fixed key
    y_train: np.ndarray  # int labels, −1 where the dataset has none
    x_test: Array
    y_test: np.ndarray

    @property
    def has_labels(self) -> bool:
        return bool(np.all(self.y_train >= 0) and np.all(self.y_test >= 0))

    @property
    def title(self) -> str:
        return run_title(self.config, self.model, self.epoch)


def run_title(config, model: models.Model, epoch: int) -> str:
    """'VAE · mnist · latent 2 · bernoulli on binary data · epoch 10': what a figure shows."""
    lik = config.likelihood.name
    if lik == "gaussian":
        lik += " (learned σ)" if config.likelihood.learn_sigma else f" σ={config.likelihood.sigma}"
    lik += f" on {model.spec.kind} data"
    if not model.units.is_log_likelihood:
        lik += " (cross-entropy, not a likelihood)"
    return (
        f"{config.model.family.upper()} · {config.data.name} · latent {model.latent_dim} · "
        f"{lik} · epoch {epoch}"
    )


def load_run(workdir: str, epoch: int | None = None, seed: int = 0) -> Run:
    """Restores a run's checkpoint (the latest unless `epoch`) and preprocesses its data."""
    config, model, params, epoch = training.restore_params(workdir, epoch)
    dataset = data.load(config.data)
    key = jax.random.key(seed)

    def model_input(split: data.Split, salt: int) -> Array:
        return jax.jit(data.preprocess, static_argnums=(2, 3, 4))(
            split.images,
            jax.random.fold_in(key, salt),
            model.spec.num_levels,
            config.data.binarization,
            bool(config.data.dequantize),
        )

    return Run(
        workdir=workdir,
        config=config,
        model=model,
        params=params,
        epoch=epoch,
        x_train=model_input(dataset.train, _PREPROCESS_TRAIN),
        y_train=np.asarray(dataset.train.labels),
        x_test=model_input(dataset.test, _PREPROCESS_TEST),
        y_test=np.asarray(dataset.test.labels),
    )


def subset_indices(total: int, size: int, seed: int) -> np.ndarray:
    """`size` distinct indices out of `total`, fixed by `seed` (sorted; all if size >= total).

    Random rather than the first `size`: some test splits are sorted by class.
    """
    if size <= 0 or size >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size, replace=False))


def manifold_part(run: Run, options: Options) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Embedding metrics for the model's latent space and the baselines; also the embeddings."""
    idx = subset_indices(len(run.y_test), options.manifold_examples, options.seed)
    x, labels = flatten(run.x_test[idx]), run.y_test[idx]
    latents = encode(run.model, run.params, run.x_test[idx], run.y_test[idx])
    method = latent_method_name(run.model.latent_dim, options.latent_projection)
    embeddings = {method: latent_to_2d(latents, options.latent_projection, options.seed)}
    embeddings.update(baseline_embeddings(x, options.seed, options.neighbors))
    metrics = {
        name: embedding_quality(
            x, emb, labels if run.has_labels else None, options.neighbors, options.knn_neighbors
        )
        for name, emb in embeddings.items()
    }
    metrics["num_images"] = len(idx)
    return metrics, {"indices": idx, "latent": embeddings[method], **embeddings}


def representation_part(run: Run, options: Options) -> dict[str, Any]:
    train_idx = subset_indices(len(run.y_train), options.probe_train_examples, options.seed)
    test_idx = subset_indices(len(run.y_test), options.probe_test_examples, options.seed + 1)
    x_train, x_test = run.x_train[train_idx], run.x_test[test_idx]
    y_train, y_test = run.y_train[train_idx], run.y_test[test_idx]
    return representation(
        encode(run.model, run.params, x_train, y_train),
        encode(run.model, run.params, x_test, y_test),
        x_train,
        x_test,
        y_train,
        y_test,
        options.knn_neighbors,
    )


def write_figures(
    run: Run, options: Options, out_dir: str, embeddings: dict[str, np.ndarray] | None = None
) -> list[str]:
    """Every figure that applies to the run's model (see `FIGURES`); returns the PNG paths.

    `embeddings`: the manifold part's output, whose 2-D latent map is reused, not recomputed.
    """
    os.makedirs(out_dir, exist_ok=True)
    if embeddings is None:
        idx = subset_indices(len(run.y_test), options.manifold_examples, options.seed)
        latents = encode(run.model, run.params, run.x_test[idx], run.y_test[idx])
        latent = latent_to_2d(latents, options.latent_projection, options.seed)
        embeddings = {"indices": idx, "latent": latent}
    written = []
    for figure in FIGURES:
        written += figure(run, options, out_dir, embeddings)
    return written


def _shown(run: Run, num: int, seed: int) -> tuple[Array, Array]:
    idx = subset_indices(len(run.y_test), num, seed)
    return run.x_test[idx], jnp.asarray(run.y_test[idx])


def _figure_rng(options: Options, salt: int) -> Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(options.seed), _FIGURES), salt)


def has_prior(model: models.Model) -> bool:
    """Models with a prior to sample and take quantiles of: VAE-like families and the AAE."""
    return is_stochastic(model) or hasattr(model, "prior")


def prior_grid(model: models.Model, n: int, rng: Array, lo=0.05, hi=0.95) -> np.ndarray:
    """(n, n, 2) latents: an even grid of probabilities through the prior's inverse CDF per axis,
    so every row and column covers the same prior mass (Kingma & Welling's Figure 4). N(0, I):
    the exact inverse CDF; other priors (AAE): quantiles of 100,000 draws. z₁ rises from left to
    right, z₂ falls from top to bottom."""
    probs = np.linspace(lo, hi, n)
    prior = getattr(model, "prior", None)
    if prior is None or isinstance(prior, priors.StandardNormal):
        quantiles = np.stack([stats.norm.ppf(probs)] * 2, axis=1)
    else:
        quantiles = np.quantile(np.asarray(prior.sample(rng, 100_000)), probs, axis=0)
    z1, z2 = np.meshgrid(quantiles[:, 0], quantiles[::-1, 1])
    return np.stack([z1, z2], axis=-1)


def _one_hot_rows(model: models.Model, label: int, num: int) -> Array | None:
    """The decoder's conditioning vector for `num` copies of `label` (None if unconditional)."""
    return model.condition({"y": jnp.full((num,), label, jnp.int32)})


def reconstruction_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    x, y = _shown(run, 24, options.seed)
    outputs = reconstruct(run.model, run.params, x, y)
    path = os.path.join(out_dir, "reconstructions.png")
    return [plots.reconstructions(np.asarray(x), np.asarray(outputs), path, run.title)]


def interpolation_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Four pairs of test images, decoded along the straight line between their codes (and,
    for conditional models, between their one-hot labels)."""
    x, y = _shown(run, 8, options.seed + 1)
    z, cond = codes(run.model, run.params, x, y)
    t = jnp.linspace(0.0, 1.0, 10)[None, :, None]

    def line(v):
        v = v.reshape(4, 2, -1)
        return (v[:, :1] * (1 - t) + v[:, 1:] * t).reshape(40, -1)

    between = run.model.decode_mean(run.params, line(z), None if cond is None else line(cond))
    shape = x.shape[1:]
    path = os.path.join(out_dir, "interpolation.png")
    endpoints, between = np.asarray(x).reshape(4, 2, *shape), np.asarray(between)
    return [plots.interpolations(endpoints, between.reshape(4, 10, *shape), path, run.title)]


def sample_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    if not hasattr(run.model, "sample"):
        return []  # deterministic AEs have no prior to sample
    images = np.asarray(run.model.sample(run.params, _figure_rng(options, 0), 100))
    heading = "Samples: mean of p(x|z), z ~ p(z)"
    if is_conditional(run.model):
        heading += f", label y = column (0..{run.model.spec.num_classes - 1}, cycling)"
    return [plots.samples(images, os.path.join(out_dir, "samples.png"), run.title, heading)]


def manifold_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """The decoded 2-D latent grid; one per label for conditional models."""
    model = run.model
    if model.latent_dim != 2 or not has_prior(model):
        return []
    n = 20 if not is_conditional(model) else 12
    grid = prior_grid(model, n, _figure_rng(options, 1))
    z = jnp.asarray(grid.reshape(-1, 2), jnp.float32)
    labels = range(model.spec.num_classes) if is_conditional(model) else [None]
    written = []
    for label in labels:
        cond = None if label is None else _one_hot_rows(model, label, n * n)
        images = np.asarray(model.decode_mean(run.params, z, cond))
        images = images.reshape(n, n, *run.x_test.shape[1:])
        name, heading = "manifold.png", "Latent manifold"
        if label is not None:
            name, heading = f"manifold_y{label}.png", f"Latent manifold of label y = {label}"
        path = os.path.join(out_dir, name)
        written.append(plots.latent_manifold(images, grid, path, run.title, heading))
    return written


def latent_map_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    labels = run.y_test[embeddings["indices"]] if run.has_labels else None
    method = options.latent_projection
    axes = ("z₁", "z₂") if run.model.latent_dim <= 2 else (f"{method} 1", f"{method} 2")
    path = os.path.join(out_dir, "latent_map.png")
    return [plots.latent_scatter(embeddings["latent"], labels, path, run.title, axes)]


def prior_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Prior draws under the encoded test images: does the code distribution fill the prior?
    (The AAE's objective; for a VAE, the aggregate posterior against N(0, I).)"""
    model = run.model
    if model.latent_dim != 2 or not has_prior(model):
        return []
    prior = getattr(model, "prior", None) or priors.StandardNormal(model.latent_dim)
    draws = np.asarray(prior.sample(_figure_rng(options, 2), 5000))
    labels = run.y_test[embeddings["indices"]] if run.has_labels else None
    path = os.path.join(out_dir, "prior_vs_codes.png")
    heading = f"Codes of test images over draws from the prior ({type(prior).__name__})"
    return [
        plots.latent_scatter(
            embeddings["latent"], labels, path, run.title, background=draws, heading=heading
        )
    ]


def denoising_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Denoising families: clean test images, their corruption, and the model's restoration."""
    model = run.model
    if not hasattr(model, "corrupt"):
        return []
    x, y = _shown(run, 12, options.seed + 2)
    corrupted = model.corrupt(x, _figure_rng(options, 3))
    restored = reconstruct(model, run.params, corrupted, y)
    cfg = model.config.model
    heading = f"Denoising: {cfg.corruption} noise at level {cfg.noise_level}"
    path = os.path.join(out_dir, "denoising.png")
    arrays = (np.asarray(a) for a in (x, corrupted, restored))
    return [plots.denoising(*arrays, path, run.title, heading)]


def class_figures(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Conditional families: the same prior draws decoded with every label, and analogies (the
    code of a test image, given its own label, decoded with every label)."""
    model = run.model
    if not is_conditional(model):
        return []
    num_classes, params = model.spec.num_classes, run.params
    names = [str(k) for k in range(num_classes)]
    z = priors.StandardNormal(model.latent_dim).sample(_figure_rng(options, 4), 12)
    rows = [model.decode_mean(params, z, _one_hot_rows(model, k, 12)) for k in range(num_classes)]
    heading = "Class-conditional samples: one z ~ p(z) per column, label y per row"
    written = [
        plots.class_grid(
            np.asarray(jnp.stack(rows)),
            names,
            os.path.join(out_dir, "class_samples.png"),
            heading,
            run.title,
        )
    ]
    x, y = _shown(run, 8, options.seed + 3)
    codes_x, _ = codes(model, params, x, y)
    outputs = [
        model.decode_mean(params, codes_x, _one_hot_rows(model, k, len(y)))
        for k in range(num_classes)
    ]
    path = os.path.join(out_dir, "analogies.png")
    written.append(
        plots.analogies(np.asarray(x), np.asarray(jnp.stack(outputs, 1)), names, path, run.title)
    )
    return written


FIGURES = (
    reconstruction_figure,
    interpolation_figure,
    sample_figure,
    manifold_figure,
    latent_map_figure,
    prior_figure,
    denoising_figure,
    class_figures,
)


def summary(results: dict[str, Any]) -> str:
    """One line per number of an eval.json (`part/name: value ± stderr`), units left to the file."""

    def walk(node: Any, prefix: str) -> list[str]:
        if isinstance(node, dict) and "value" in node:
            err = f" ± {node['stderr']:.3g}" if "stderr" in node else ""
            return [f"{prefix}: {node['value']:.4g}{err}"]
        if isinstance(node, dict):
            return [line for k, v in node.items() for line in walk(v, f"{prefix}/{k}")]
        return []

    parts = ("density", "reduction", "manifold", "representation")
    return "\n".join([results["title"]] + [ln for p in parts for ln in walk(results.get(p), p)])


def evaluate_run(
    workdir: str, options: Options = Options(), epoch: int | None = None
) -> dict[str, Any]:
    """Evaluates a run's checkpoint and writes workdir/eval.json (and figures/*.png)."""
    start = time.time()
    run = load_run(workdir, epoch, options.seed)
    model = run.model
    results: dict[str, Any] = {
        "workdir": os.path.abspath(workdir),
        "epoch": run.epoch,
        "title": run.title,
        "family": run.config.model.family,
        "dataset": run.config.data.name,
        "latent_dim": model.latent_dim,
        "likelihood": run.config.likelihood.name,
        "recon_units": model.units.description,
        "is_log_likelihood": model.units.is_log_likelihood,
        "images": (
            f"{model.spec.kind} model inputs from data.preprocess with a fixed key (seed "
            f"{options.seed}); test split of {len(run.y_test)} images"
        ),
        "options": dataclasses.asdict(options),
    }
    key = jax.random.key(options.seed)
    timings = {}

    def timed(part: str, fn: Callable[[], Any]) -> Any:
        t = time.time()
        value = fn()
        timings[part] = quantity(time.time() - t, "seconds")
        return value

    if "density" in options.parts:
        results["density"] = timed(
            "density", lambda: density(model, run.params, run.x_test, run.y_test, key, options)
        )
    if "reduction" in options.parts:
        results["reduction"] = timed(
            "reduction", lambda: reduction(model, run.params, run.x_train, run.x_test, run.y_test)
        )
    embeddings = None
    if "manifold" in options.parts:
        results["manifold"], embeddings = timed("manifold", lambda: manifold_part(run, options))
    if "representation" in options.parts:
        if run.has_labels:
            results["representation"] = timed(
                "representation", lambda: representation_part(run, options)
            )
        else:
            results["representation"] = f"skipped: {run.config.data.name} has no labels"
    if "figures" in options.parts:
        figures = timed(
            "figures",
            lambda: write_figures(run, options, os.path.join(workdir, "figures"), embeddings),
        )
        results["figures"] = [os.path.relpath(f, workdir) for f in figures]
    results["seconds"] = timings
    results["total_seconds"] = quantity(time.time() - start, "seconds")
    path = os.path.join(workdir, "eval.json")
    results = carry_over_parts(results, path)
    with open(path + ".tmp", "w") as f:  # then renamed: a kill never leaves half a file
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    return results


def carry_over_parts(results: dict[str, Any], path: str) -> dict[str, Any]:
    """`results` plus the parts of the eval.json at `path` that this evaluation did not redo,
    when that file evaluated the same checkpoint (epoch); results["carried_over"] gives the
    options each kept part was computed with. Parts of another checkpoint are dropped."""
    try:
        with open(path) as f:
            previous = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return results
    if previous.get("epoch") != results["epoch"]:
        return results
    results = dict(results, seconds=dict(results["seconds"]), carried_over={})
    previously_carried = previous.get("carried_over", {})
    for part in PARTS:
        if part in previous and part not in results:
            results[part] = previous[part]
            results["carried_over"][part] = previously_carried.get(part, previous["options"])
            if part in previous.get("seconds", {}):
                results["seconds"][part] = previous["seconds"][part]
    return results
