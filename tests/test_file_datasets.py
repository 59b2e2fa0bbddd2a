"""Datasets from files (`folder:PATH`, `npz:PATH`, `npy:PATH`): layouts, kinds, image_size, and
RGB, odd-sized and flat data trained with configs/vae.py and evaluated with every figure.

The refusals a user meets on the command line are rows of tests/test_bad_inputs.py; the layout and
array errors beyond those are checked here, on `data.describe`."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

from autoencoders import data, evaluation, training
from configs import common, vae

# Small enough for seconds: t-SNE (the manifold part) needs more than 30 test images.
SMALL = evaluation.Options(
    num_samples=8,
    report_ks=(1,),
    sample_chunk=8,
    manifold_examples=40,
    neighbors=5,
    knn_neighbors=3,
    probe_train_examples=100,
    probe_test_examples=40,
)


def data_config(name: str, **kw):
    cfg = common.base_config().data
    cfg.name = name
    cfg.update(kw)
    return cfg


def save_png(path: pathlib.Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def rgb_folder(tmp_path_factory) -> pathlib.Path:
    """200 RGB PNGs of 32×24 (width × height) in class folders `red/` and `blue/`: noise around a
    colour per class, so a fixed 80/20 split leaves 40 test images."""
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        for i in range(100):
            pixels = np.clip(rng.normal(colour, 40, (24, 32, 3)), 0, 255).astype(np.uint8)
            save_png(root / name / f"{i:03d}.png", pixels)
    return root


def train_one_epoch(config, workdir: pathlib.Path) -> None:
    config.network.hidden = (32,)
    config.train.num_epochs = config.checkpoint.every_epochs = 1
    config.train.batch_size, config.train.eval_batch_size = 32, 64
    training.train_and_evaluate(config, str(workdir))


def figure_names(results) -> set[str]:
    return {os.path.splitext(os.path.basename(f))[0] for f in results["figures"]}


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_a_folder_of_rgb_pngs_trains_and_evaluates_with_every_figure(rgb_folder, tmp_path, net):
    config = vae.get_config(f"latent=2,data=folder:{rgb_folder},net={net}")
    train_one_epoch(config, tmp_path)
    parts = evaluation.PARTS if net == "mlp" else ("figures",)
    results = evaluation.evaluate_run(str(tmp_path), dataclasses.replace(SMALL, parts=parts))
    expected = {"reconstructions", "interpolation", "samples", "manifold", "latent_map"}
    assert figure_names(results) == expected | {"prior_vs_codes"}
    with Image.open(tmp_path / "figures" / "reconstructions.png") as figure:
        pixels = np.asarray(figure.convert("RGB"), np.int32)
    assert np.any(np.abs(pixels[..., 0] - pixels[..., 2]) > 50)  # shown in colour, not grey
    if net == "mlp":
        assert np.isfinite(results["density"]["nll"]["value"])
        assert set(results["representation"]) >= {"latent", "pixels"}  # labels from the folders
        assert results["manifold"]["num_images"] == 40


def test_class_folders_are_sorted_labels_named_in_the_spec_and_the_log(rgb_folder, caplog):
    cfg = data_config(f"folder:{rgb_folder}", valid_size=20)
    with caplog.at_level(logging.INFO):
        ds = data.load(cfg)
    assert ds.spec.shape == (24, 32, 3) and ds.spec.num_levels == 256 and ds.spec.kind == "grey"
    assert ds.spec.class_names == ("blue", "red") and ds.spec.num_classes == 2
    assert (ds.train.size, ds.valid.size, ds.test.size) == (140, 20, 40)
    red = np.asarray(ds.test.images)[np.asarray(ds.test.labels) == 1]
    assert red[..., 0].mean() > red[..., 2].mean() + 100
    assert f"folder:{rgb_folder}: labels 0 = blue, 1 = red" in caplog.text


def test_train_and_test_folders_are_the_split_and_unlabelled_images_get_minus_one(tmp_path):
    for split, n in (("train", 6), ("test", 3)):
        for i in range(n):
            save_png(tmp_path / split / f"{i}.png", np.full((8, 8), 10 * i, np.uint8))
    ds = data.load(data_config(f"folder:{tmp_path}"))
    assert (ds.train.size, ds.test.size) == (6, 3) and ds.spec.num_classes == 0
    assert ds.spec.shape == (8, 8, 1)
    assert set(np.asarray(ds.train.labels)) == set(np.asarray(ds.test.labels)) == {-1}


def test_image_size_centre_crops_and_resizes_mixed_sizes_and_grey_joins_rgb(tmp_path):
    wide = np.zeros((20, 40), np.uint8)
    wide[:, 10:30] = 255  # the centre square is white, the sides black
    save_png(tmp_path / "wide.png", wide)
    save_png(tmp_path / "small_rgb.png", np.full((6, 6, 3), (255, 0, 0), np.uint8))
    for i in range(3):  # five images: one for the fixed split's test set
        save_png(tmp_path / f"other_{i}.png", np.full((16, 16), 128, np.uint8))
    spec = data.describe(data_config(f"folder:{tmp_path}", image_size=10))
    assert spec.shape == (10, 10, 3)
    images = np.asarray(data.load(data_config(f"folder:{tmp_path}", image_size=10)).train.images)
    kinds = {tuple(image[0, 0]) for image in images}
    assert (255, 0, 0) in kinds  # the 6×6 red image, resized
    assert any(np.array_equal(im, np.full((10, 10, 3), 255)) for im in images)  # cropped, as RGB


def test_npz_of_grey_levels_with_its_own_test_split_trains_with_discretized_logistic(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "grey.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (96, 12, 20), dtype=np.int64),  # int64 levels, as numpy saves them
        y=rng.integers(0, 3, 96),
        x_test=rng.integers(0, 256, (40, 12, 20)).astype(np.uint8),
        y_test=rng.integers(0, 3, 40),
    )
    config = vae.get_config(f"latent=2,data=npz:{path},likelihood=discretized_logistic")
    spec = training.check_config(config)
    assert (spec.shape, spec.num_levels, spec.num_classes, spec.kind) == (
        (12, 20, 1),
        256,
        3,
        "grey",
    )
    train_one_epoch(config, tmp_path / "run")
    results = evaluation.evaluate_run(
        str(tmp_path / "run"), dataclasses.replace(SMALL, parts=("figures",))
    )
    assert "reconstructions" in figure_names(results)


def test_flat_vectors_train_a_learned_sigma_gaussian_mlp_vae_and_are_refused_by_conv(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.beta(2, 5, (200, 6)).astype(np.float32)  # tabular features scaled to [0, 1]
    np.save(tmp_path / "table.npy", x)
    config = vae.get_config(f"latent=2,data=npy:{tmp_path}/table.npy,likelihood=gaussian_learned")
    spec = training.check_config(config)
    assert (spec.shape, spec.num_levels, spec.kind) == ((1, 6, 1), data.CONTINUOUS, "dequantized")
    train_one_epoch(config, tmp_path / "run")
    options = dataclasses.replace(SMALL, parts=("density", "reduction", "figures"))
    results = evaluation.evaluate_run(str(tmp_path / "run"), options)
    assert np.isfinite(results["density"]["nll"]["value"])
    assert {"reconstructions", "samples", "manifold"} <= figure_names(results)
    config.network.kind = "conv"
    with pytest.raises(ValueError, match=r"the data \(1, 6, 1\) are flat vectors .*kind='mlp'"):
        training.check_config(config)


def test_floats_are_taken_as_they_are_or_binarized(tmp_path):
    x = np.linspace(0, 1, 4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    np.save(tmp_path / "x.npy", np.concatenate([x] * 10))
    name = f"npy:{tmp_path}/x.npy"
    plain = data.load(data_config(name, dequantize=True))
    assert plain.spec.kind == "dequantized" and plain.train.images.dtype == np.float32
    inputs = data.preprocess(plain.train.images, jax.random.key(0), 0, "none", True)
    np.testing.assert_array_equal(inputs, plain.train.images)  # continuous already: no noise
    dynamic = data.describe(data_config(name, binarization="dynamic"))
    assert (dynamic.kind, dynamic.num_levels) == ("binary", 2)
    drawn = data.preprocess(plain.train.images, jax.random.key(0), 2, "dynamic", False)
    assert set(np.unique(np.asarray(drawn))) == {0.0, 1.0}
    static = data.load(data_config(name, binarization="static"))
    assert static.train.images.dtype == np.uint8 and int(static.train.images.max()) == 1


def write_npz(path: pathlib.Path, **arrays) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.zeros((4, 8, 8))}, "holds arrays images; expected x, and optionally y"),
        ({"x": np.zeros((4, 8, 8)), "y_test": np.zeros(4, int)}, "has y_test but no x_test"),
        (
            {"x": np.zeros((4, 8, 8)), "y": np.zeros(4, int), "x_test": np.zeros((2, 8, 8))},
            r"labels for both splits \(y and y_test\) or for neither",
        ),
        (
            {"x": np.zeros((4, 8, 8)), "x_test": np.zeros((2, 8, 6))},
            r"x_test is float32 of shape \(8, 6, 1\)",
        ),
        ({"x": np.full((4, 8, 8), 300)}, "x holds integers from 300 to 300: integer images"),
        ({"x": np.zeros((4, 8, 8, 2))}, r"x has shape \(4, 8, 8, 2\): give N×D vectors"),
        ({"x": np.zeros((4, 8), bool)}, "x has dtype bool: give integers 0..255 or floats"),
        ({"x": np.zeros((4, 8)), "y": -np.ones(4, int)}, "y holds label -1: labels must be"),
    ],
)
def test_array_files_that_break_the_convention_are_named(tmp_path, arrays, message):
    with pytest.raises(ValueError, match=message):
        data.describe(data_config(write_npz(tmp_path / "a.npz", **arrays)))


def test_folder_layouts_that_are_ambiguous_are_named(tmp_path):
    save_png(tmp_path / "loose.png", np.zeros((4, 4), np.uint8))
    save_png(tmp_path / "cat" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="holds both images .* and sub-folders"):
        data.describe(data_config(f"folder:{tmp_path}"))
    (tmp_path / "loose.png").unlink()
    (tmp_path / "dog").mkdir()
    with pytest.raises(ValueError, match=f"class folder {tmp_path}/dog holds no PNG or JPEG"):
        data.describe(data_config(f"folder:{tmp_path}"))
    split = tmp_path / "split"
    save_png(split / "train" / "cat" / "0.png", np.zeros((4, 4), np.uint8))
    save_png(split / "test" / "dog" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"test split's class folders \(dog\) are not among"):
        data.describe(data_config(f"folder:{split}"))
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(split / "train" / "cat" / "1.png")
    with pytest.raises(ValueError, match="cannot read .*1.png as an image .*mode I;16"):
        data.describe(data_config(f"folder:{split}/train"))
