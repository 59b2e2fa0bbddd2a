"""Evaluation of a trained run, along the four views of an autoencoder in the lecture (see README).

- **Density** (`density.py`): test log-likelihood by importance sampling (the IWAE estimator,
  Burda et al. 2016), the ELBO beside it, and active units; deterministic autoencoders claim no
  likelihood: only their reconstruction terms are reported.
- **Dimensionality reduction**: squared reconstruction error per image (summed over pixels, mean
  over images: Hinton & Salakhutdinov's unit) of the model and of PCA with as many components.
- **Manifold learning** (`baselines.py`): 2-D embeddings of test images (the model's latent space,
  PCA, Isomap, t-SNE) scored by trustworthiness, continuity and kNN label accuracy.
- **Representation** (`baselines.py`): linear-probe and kNN accuracy on latent means, on PCA
  features of the same size and on raw pixels.
- **Figures** (`figures.py`): those that apply to the model, drawn by `plots.py`.
  They also go to the run's TensorBoard as images, at the evaluated epoch's step.
- **report.html** (`run_page.py`): all of it on one self-contained page, with a latent explorer.

This module ties them to a restored run (`load_run`): `evaluate_run(workdir, options)` runs the
parts of `Options.parts` and writes `workdir/eval.json`, `workdir/figures/*.png` and
`workdir/report.html`, and the density part's per-image values to `workdir/eval_per_image.npz`
(`read_per_image`: to compare two models image by image); each part is also a function of arrays
in its module, for notebooks.
Images are the model's input as training made it (`data.preprocess` with a fixed key): grey
levels in [0, 1], or binarized / dequantized once. Every number in eval.json carries its unit,
and every random choice comes from `Options.seed`, so the same seed gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from PIL import Image

from autoencoders import (
    baselines,
    data,
    density,
    figures,
    metrics,
    models,
    run_page,
    tensorboard_events,
)
from autoencoders import workdir as workdirs
from autoencoders.models import base
from autoencoders.quantities import (
    SALT_PREPROCESS_TEST,
    SALT_PREPROCESS_TRAIN,
    option,
    per_image,
    quantity,
    subset_indices,
)

Array = jax.Array
Params = Any

PARTS = ("density", "reduction", "manifold", "representation", "figures")


@dataclasses.dataclass(frozen=True)
class Options:
    """What to evaluate and how much of it; every field is a flag of `experiments.evaluate`, with
    its `help` as the flag's help."""

    parts: tuple[str, ...] = option(PARTS, f"Parts to run, among {', '.join(PARTS)}.")
    seed: int = option(0, "Seed of every random choice.")
    num_samples: int = option(5000, "k, importance samples per test image (Burda et al.: 5000).")
    report_ks: tuple[int, ...] = option(
        (1, 10, 100, 1000), "Smaller k also reported: prefixes of the same samples."
    )
    sample_chunk: int = option(density.SAMPLE_CHUNK, "Importance samples drawn at once per image.")
    # ~4000 decoder rows per block keep its activations in cache: faster on a CPU than 32 examples
    # (16000 rows); compare `python -m benchmarks.run --benchmarks=is_eval --is_example_batch=32`.
    example_batch: int = option(
        density.EXAMPLE_BATCH, "Images vectorised at once; memory ∝ example_batch·sample_chunk."
    )
    density_examples: int = option(0, "Test images for the IS estimate (fixed subset); 0 = all.")
    active_threshold: float = option(
        0.01, "A latent unit is active where Var_x E_q[z_j|x] exceeds this."
    )
    manifold_examples: int = option(1000, "Test images embedded in 2-D.")
    neighbors: int = option(10, "Neighbourhood size of trustworthiness and continuity.")
    knn_neighbors: int = option(5, "k of the kNN label accuracy (embeddings and probes).")
    latent_projection: str = option("pca", "Latents of more than 2 dims to 2-D: pca | tsne.")
    probe_train_examples: int = option(5000, "Training images for the representation probes.")
    probe_test_examples: int = option(2000, "Test images for the representation probes.")

    def __post_init__(self):
        unknown = set(self.parts) - set(PARTS)
        if unknown or not self.parts:
            raise ValueError(f"parts={sorted(unknown)}: must be among {', '.join(PARTS)}.")
        for name in _POSITIVE_OPTIONS:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be > 0.")
        if self.density_examples < 0:
            raise ValueError(f"density_examples={self.density_examples}: must be >= 0.")
        if not 0 <= self.active_threshold < math.inf:
            raise ValueError(f"active_threshold={self.active_threshold}: must be finite, >= 0.")
        if any(not 0 < k <= self.num_samples for k in self.report_ks):
            raise ValueError(f"report_ks={self.report_ks}: each must be in 1..num_samples.")
        if self.latent_projection not in ("pca", "tsne"):
            raise ValueError(f"latent_projection={self.latent_projection!r}: must be pca or tsne.")


_POSITIVE_OPTIONS = (
    "num_samples",
    "sample_chunk",
    "example_batch",
    "manifold_examples",
    "neighbors",
    "knn_neighbors",
    "probe_train_examples",
    "probe_test_examples",
)


# ---------------------------------------------------------------------------------------------
# A restored run and its data
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
    data_name = config.data.name
    if ":" in data_name:  # folder:/a/long/path/pets -> folder:pets, a title's length
        kind, path = data_name.split(":", 1)
        data_name = f"{kind}:{os.path.basename(os.path.normpath(path))}"
    return (
        f"{config.model.family.upper()} · {data_name} · latent {model.latent_dim} · "
        f"{lik} · epoch {epoch}"
    )


def load_run(workdir: str, epoch: int | None = None, seed: int = 0) -> Run:
    """Restores a run's checkpoint (the latest unless `epoch`) and preprocesses its data."""
    config, model, params, epoch = workdirs.restore_params(workdir, epoch)
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
        x_train=model_input(dataset.train, SALT_PREPROCESS_TRAIN),
        y_train=np.asarray(dataset.train.labels),
        x_test=model_input(dataset.test, SALT_PREPROCESS_TEST),
        y_test=np.asarray(dataset.test.labels),
    )


# ---------------------------------------------------------------------------------------------
# The parts that tie a run to the baselines
# ---------------------------------------------------------------------------------------------


def reduction(
    model: models.Model, params: Params, x_train: Array, x_test: Array, y_test: np.ndarray
) -> dict[str, Any]:
    """Squared reconstruction error per test image of the model and of PCA of the same size."""
    model_err = density.squared_errors(model, params, x_test, y_test)
    pca_err = baselines.pca_reconstruction_errors(x_train, x_test, model.latent_dim)
    unit = base.SQ_ERR_UNIT
    return {
        "num_components": model.latent_dim,
        "model_sq_err": per_image(model_err, unit),
        "pca_sq_err": per_image(pca_err, unit + "; PCA fitted on the training images"),
    }


def manifold_part(run: Run, options: Options) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Embedding metrics for the model's latent space and the baselines; also the embeddings."""
    idx = subset_indices(len(run.y_test), options.manifold_examples, options.seed)
    x, labels = baselines.flatten(run.x_test[idx]), run.y_test[idx]
    latents = density.encode(run.model, run.params, run.x_test[idx], run.y_test[idx])
    method = baselines.latent_method_name(run.model.latent_dim, options.latent_projection)
    embeddings = {method: baselines.latent_to_2d(latents, options.latent_projection, options.seed)}
    embeddings.update(baselines.baseline_embeddings(x, options.seed, options.neighbors))
    metrics = {
        name: baselines.embedding_quality(
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
    return baselines.representation(
        density.encode(run.model, run.params, x_train, y_train),
        density.encode(run.model, run.params, x_test, y_test),
        x_train,
        x_test,
        y_train,
        y_test,
        options.knn_neighbors,
    )


# ---------------------------------------------------------------------------------------------
# Every part of a run, to eval.json
# ---------------------------------------------------------------------------------------------


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
        results["density"], each = timed(
            "density",
            lambda: density.density(model, run.params, run.x_test, run.y_test, key, options),
        )
        write_per_image(workdir, run.epoch, each)
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
        out_dir = os.path.join(workdir, workdirs.FIGURES_DIR)
        written = timed("figures", lambda: figures.write_figures(run, options, out_dir, embeddings))
        results["figures"] = [os.path.relpath(f, workdir) for f in written]
        figures_to_tensorboard(run, written)
    results["seconds"] = timings
    results["total_seconds"] = quantity(time.time() - start, "seconds")
    path = os.path.join(workdir, workdirs.EVAL_FILE)
    results = carry_over_parts(results, path)
    with open(path + ".tmp", "w") as f:  # then renamed: a kill never leaves half a file
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    run_page.write_run_page(run, results, options, embeddings)  # report.html, from eval.json
    return results


def write_per_image(workdir: str, epoch: int, values: dict[str, np.ndarray]) -> None:
    """The density part's per-image values (`density.density`) of `epoch`'s checkpoint."""
    path = os.path.join(workdir, workdirs.PER_IMAGE_FILE)
    with open(path + ".tmp", "wb") as f:  # then renamed: a kill never leaves half a file
        np.savez(f, epoch=epoch, **values)
    os.replace(path + ".tmp", path)


def read_per_image(workdir: str, epoch: int) -> dict[str, np.ndarray] | None:
    """The density part's per-image values of `epoch`'s checkpoint: `index` (which test images)
    and each term and estimate on them, in the units eval.json gives its mean; None where they
    are not written, or were written for another checkpoint."""
    path = os.path.join(workdir, workdirs.PER_IMAGE_FILE)
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        values = {name: saved[name] for name in saved.files}
    return values if int(values.pop("epoch")) == epoch else None


def figures_to_tensorboard(run: Run, paths: list[str]) -> None:
    """The figures as TensorBoard images (`figures/<name>`) in the run's `tensorboard/`, at the
    training step of the evaluated epoch, so TensorBoard shows them beside the curves."""
    rows = metrics.latest_by_epoch(
        os.path.join(run.workdir, workdirs.METRICS_FILE), run.config.data.eval_split
    )
    step = int(rows.get(run.epoch, {}).get("step", run.epoch))
    images = {}
    for path in paths:
        with open(path, "rb") as f:  # the PNG as written: TensorBoard shows it, no re-encoding
            png = f.read()
        with Image.open(io.BytesIO(png)) as image:  # reads only the header
            width, height = image.size
        images[f"figures/{os.path.splitext(os.path.basename(path))[0]}"] = (width, height, png)
    writer = tensorboard_events.EventWriter(os.path.join(run.workdir, metrics.TENSORBOARD_DIR))
    writer.png_images(step, images)
    writer.close()


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
