"""Figures: every plot function writes a non-empty PNG of the size its layout promises, and every
family's figures come out of a tiny run on the embedded digits."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from PIL import Image

from autoencoders import evaluation, figures, models, plots, training

H, W = 8, 6  # non-square on purpose: cells follow the images' aspect
RNG = np.random.default_rng(0)


def images(*shape: int) -> np.ndarray:
    return RNG.random((*shape, H, W, 1)).astype(np.float32)


def pixel_size(path: str) -> tuple[int, int]:
    assert os.path.getsize(path) > 1000
    with Image.open(path) as png:
        assert png.format == "PNG"
        return png.size


def grid_pixels(rows: int, cols: int) -> tuple[int, int]:
    width, height = plots.grid_figsize(rows, cols, (H, W))
    return round(width * plots.DPI), round(height * plots.DPI)


SCATTER_PIXELS = tuple(round(v * plots.DPI) for v in plots.SCATTER_SIZE)


@pytest.mark.parametrize(
    "draw, size",
    [
        (lambda p: plots.reconstructions(images(16), images(16), p, "t"), grid_pixels(4, 8)),
        (lambda p: plots.samples(images(30), p, "t"), grid_pixels(3, 10)),
        (
            lambda p: plots.latent_manifold(images(5, 5), RNG.normal(size=(5, 5, 2)), p, "t"),
            grid_pixels(5, 5),
        ),
        (lambda p: plots.interpolations(images(3, 2), images(3, 7), p, "t"), grid_pixels(3, 9)),
        (lambda p: plots.denoising(images(12), images(12), images(12), p, "t"), grid_pixels(3, 12)),
        (lambda p: plots.class_grid(images(4, 6), list("abcd"), p, "h", "t"), grid_pixels(4, 6)),
        (
            lambda p: plots.analogies(images(5), images(5, 4), list("abcd"), p, "t"),
            grid_pixels(5, 5),
        ),
        (lambda p: plots.image_grid(images(2, 40), p, "h", "t"), grid_pixels(2, 40)),
        (
            lambda p: plots.latent_scatter(
                RNG.normal(size=(50, 2)), RNG.integers(0, 3, 50), p, "t"
            ),
            SCATTER_PIXELS,
        ),
        (
            lambda p: plots.latent_scatter(
                RNG.normal(size=(50, 2)), None, p, "t", background=RNG.normal(size=(99, 2))
            ),
            SCATTER_PIXELS,
        ),
    ],
)
def test_figure_is_a_png_of_the_expected_size(draw, size, tmp_path):
    path = str(tmp_path / "figure.png")
    assert draw(path) == path
    assert pixel_size(path) == size


def test_colour_images_are_accepted(tmp_path):
    rgb = RNG.random((2, 3, H, W, 3))
    path = plots.image_grid(rgb, str(tmp_path / "rgb.png"), "h", "t")
    assert pixel_size(path) == grid_pixels(2, 3)


def test_image_grid_rejects_a_flat_batch(tmp_path):
    with pytest.raises(ValueError, match="rows, cols"):
        plots.image_grid(images(4), str(tmp_path / "x.png"), "h")


# Each family's own figures, from its config on the digits, one epoch, small networks. (The vae
# and ae figure sets are checked end to end in test_evaluation.py.)
FAMILY_FIGURES = {
    ("cvae", "latent=2,data=digits"): {
        "samples",
        "prior_vs_codes",
        "class_samples",
        "analogies",
        *(f"manifold_y{k}" for k in range(10)),
    },
    ("aae", "data=digits"): {"samples", "manifold", "prior_vs_codes"},
    ("aae_cluster", "data=digits"): {"samples"},
    ("dvae", "latent=2,data=digits"): {"samples", "manifold", "prior_vs_codes", "denoising"},
}
GENERIC_FIGURES = {"reconstructions", "interpolation", "latent_map"}


@pytest.mark.parametrize("family, arg", list(FAMILY_FIGURES))
def test_family_figures_on_a_tiny_run(family, arg, tmp_path):
    if family not in models.FAMILIES:
        pytest.skip(f"family {family!r} is not in this checkout")
    config = importlib.import_module(f"configs.{family}").get_config(arg)
    config.network.hidden = (32,)
    config.train.num_epochs = 1
    workdir = str(tmp_path / family)
    training.train_and_evaluate(config, workdir)
    options = evaluation.Options(manifold_examples=100)
    run = evaluation.load_run(workdir)
    written = figures.write_figures(run, options, str(tmp_path / "figures"))
    names = {os.path.splitext(os.path.basename(p))[0] for p in written}
    assert names == GENERIC_FIGURES | FAMILY_FIGURES[(family, arg)]
    for path in written:
        pixel_size(path)
