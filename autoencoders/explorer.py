"""The latent explorer's arrays: test codes in a plane, their images, and the plane decoded.

`explore(model, params, x, y, projection, seed)` encodes test images (`models.base.Model.codes`),
places the codes in a plane (2-D latents directly; larger ones by the projection the evaluation
uses, `baselines.latent_plane`), reconstructs every image, and decodes an even grid over the
plane: for PCA through the plane's inverse (the codes' mean plus the two principal directions),
for conditional models once per label. t-SNE has no inverse, so its plane is not decoded. The
report page (`run_page.py`) embeds these arrays, so hovering needs no Python.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import baselines, density, models

Params = Any
GRID = 24  # decoded images per side of the plane (unconditional models)
GRID_CONDITIONAL = 16  # per label: a conditional model has one grid per class


@dataclasses.dataclass(frozen=True)
class Explorer:
    points: np.ndarray  # (N, 2) the test codes in the plane
    labels: np.ndarray  # (N,) int, −1 where the dataset has none
    images: np.ndarray  # (N, H, W, C) the model's inputs, in [0, 1]
    reconstructions: np.ndarray  # (N, H, W, C) mean of p(x | z [, y]) at each code
    axes: tuple[str, str]  # what the plane's axes are: z₁, z₂ or "pca 1", "pca 2"
    grid_x: np.ndarray  # (n,) the plane's grid, ascending; empty where it has no inverse
    grid_y: np.ndarray  # (n,)
    # label (−1: unconditional) -> (n·n, H, W, C) decoded means, row r = grid_y[r], column grid_x
    decoded: dict[int, np.ndarray]
    # latent point of each grid cell (n·n, latent_dim), row-major like `decoded`
    grid_latents: np.ndarray


def plane_box(points: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per axis: the 1st to 99th percentile of the points, widened by `margin` of
    the span on each side (a few outlying codes do not shrink the rest to a corner)."""
    low, high = np.percentile(points, [1, 99], axis=0)
    span = np.maximum(high - low, 1e-6)
    return low - margin * span, high + margin * span


def explore(
    model: models.Model,
    params: Params,
    x: jax.Array,
    y: np.ndarray,
    projection: str = "pca",
    seed: int = 0,
) -> Explorer:
    """The explorer of test images `x` (labels `y`, −1 where none); see the module docstring."""
    codes = density.encode(model, params, x, y)
    points, inverse = baselines.latent_plane(codes, projection, seed)
    reconstructions = jax.jit(model.reconstruct)(params, x, jnp.asarray(y))
    axes = ("z₁", "z₂") if model.latent_dim <= 2 else (f"{projection} 1", f"{projection} 2")
    grid_x = grid_y = np.zeros((0,))
    grid_latents = np.zeros((0, model.latent_dim))
    decoded: dict[int, np.ndarray] = {}
    if inverse is not None:
        n = GRID_CONDITIONAL if model.conditional else GRID
        low, high = plane_box(points)
        grid_x, grid_y = np.linspace(low[0], high[0], n), np.linspace(low[1], high[1], n)
        gx, gy = np.meshgrid(grid_x, grid_y)  # row r: grid_y[r]
        grid_latents = inverse(np.stack([gx.ravel(), gy.ravel()], axis=1))
        z = jnp.asarray(grid_latents, jnp.float32)
        decode = jax.jit(model.decode_mean)
        labels = range(model.spec.num_classes) if model.conditional else [-1]
        for label in labels:
            cond = None if label < 0 else model.condition({"y": jnp.full((len(z),), label)})
            decoded[label] = np.asarray(decode(params, z, cond))
    return Explorer(
        points=np.asarray(points),
        labels=np.asarray(y),
        images=np.asarray(x),
        reconstructions=np.asarray(reconstructions),
        axes=axes,
        grid_x=grid_x,
        grid_y=grid_y,
        decoded=decoded,
        grid_latents=np.asarray(grid_latents),
    )
