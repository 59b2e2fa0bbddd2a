"""Figure drivers: which figures a restored run gets, and the model calls that make their arrays.

`write_figures(run, options, out_dir)` writes every figure of `FIGURES` that applies to the run's
model, chosen by what the model declares (`models.base.Model`'s contract), never by its family:
reconstructions, interpolations and the label-coloured latent map for every model; prior samples,
the decoded 2-D latent manifold and prior draws under the codes where it has a `prior`; the
denoising triptych where it is `denoising`; class samples, analogies and one manifold per label
where it is `conditional`. Each driver takes (run, options, out_dir, embeddings) and returns the
paths it wrote; the drawing itself is `plots.py`'s, a function of arrays. Random draws come from
`Options.seed` (the `SALT_FIGURES` stream), so the same seed gives the same figures.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from autoencoders import baselines, density, models, plots, priors
from autoencoders.quantities import SALT_FIGURES, subset_indices

if TYPE_CHECKING:
    from autoencoders.evaluation import Options, Run

Array = jax.Array


def write_figures(
    run: Run, options: Options, out_dir: str, embeddings: dict[str, np.ndarray] | None = None
) -> list[str]:
    """Every figure that applies to the run's model (see `FIGURES`); returns the PNG paths.

    `embeddings`: the manifold part's output, whose 2-D latent map is reused, not recomputed.
    """
    os.makedirs(out_dir, exist_ok=True)
    if embeddings is None:
        idx = subset_indices(len(run.y_test), options.manifold_examples, options.seed)
        latents = density.encode(run.model, run.params, run.x_test[idx], run.y_test[idx])
        latent = baselines.latent_to_2d(latents, options.latent_projection, options.seed)
        embeddings = {"indices": idx, "latent": latent}
    written = []
    for figure in FIGURES:
        written += figure(run, options, out_dir, embeddings)
    return written


def _shown(run: Run, num: int, seed: int) -> tuple[Array, Array]:
    idx = subset_indices(len(run.y_test), num, seed)
    return run.x_test[idx], jnp.asarray(run.y_test[idx])


def _figure_rng(options: Options, salt: int) -> Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(options.seed), SALT_FIGURES), salt)


def prior_grid(model: models.Model, n: int, rng: Array, lo=0.05, hi=0.95) -> np.ndarray:
    """(n, n, 2) latents: an even grid of probabilities through the prior's inverse CDF per axis,
    so every row and column covers the same prior mass (Kingma & Welling's Figure 4). N(0, I):
    the exact inverse CDF; other priors (AAE): quantiles of 100,000 draws. z₁ rises from left to
    right, z₂ falls from top to bottom."""
    probs = np.linspace(lo, hi, n)
    prior = model.prior
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
    outputs = run.model.reconstruct(run.params, x, y)
    path = os.path.join(out_dir, "reconstructions.png")
    return [plots.reconstructions(np.asarray(x), np.asarray(outputs), path, run.title)]


def interpolation_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Four pairs of test images, decoded along the straight line between their codes (and,
    for conditional models, between their one-hot labels)."""
    x, y = _shown(run, 8, options.seed + 1)
    z, cond = run.model.codes(run.params, x, y)
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
    model = run.model
    if model.prior is None:
        return []  # deterministic AEs have no prior to sample
    images = np.asarray(model.sample(run.params, _figure_rng(options, 0), 100))
    heading = "Samples: mean of p(x|z), z ~ p(z)"
    if model.conditional:
        heading += f", label y = column (0..{model.spec.num_classes - 1}, cycling)"
    return [plots.samples(images, os.path.join(out_dir, "samples.png"), run.title, heading)]


def manifold_figure(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """The decoded 2-D latent grid; one per label for conditional models."""
    model = run.model
    if model.latent_dim != 2 or model.prior is None:
        return []
    n = 20 if not model.conditional else 12
    grid = prior_grid(model, n, _figure_rng(options, 1))
    z = jnp.asarray(grid.reshape(-1, 2), jnp.float32)
    labels = range(model.spec.num_classes) if model.conditional else [None]
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
    model, prior = run.model, run.model.prior
    if model.latent_dim != 2 or prior is None:
        return []
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
    if not model.denoising:
        return []
    x, y = _shown(run, 12, options.seed + 2)
    corrupted = model.corrupt(x, _figure_rng(options, 3))
    restored = model.reconstruct(run.params, corrupted, y)
    heading = f"Denoising: {model.corruption_description}"
    path = os.path.join(out_dir, "denoising.png")
    arrays = (np.asarray(a) for a in (x, corrupted, restored))
    return [plots.denoising(*arrays, path, run.title, heading)]


def class_figures(run: Run, options: Options, out_dir: str, embeddings) -> list[str]:
    """Conditional families: the same prior draws decoded with every label, and analogies (the
    code of a test image, given its own label, decoded with every label)."""
    model = run.model
    if not model.conditional or model.prior is None:
        return []
    num_classes, params = model.spec.num_classes, run.params
    names = [str(k) for k in range(num_classes)]
    z = model.prior.sample(_figure_rng(options, 4), 12)
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
    codes_x, _ = model.codes(params, x, y)
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
