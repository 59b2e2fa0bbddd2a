"""Datasets: loaded once, whole, into device memory; preprocessed on device per minibatch.

TFDS image datasets, the embedded `digits`, `frey_face` (where their bytes come from:
`sources.py`), and datasets from files (`folder:PATH`, `npz:PATH`, `npy:PATH`: see `files.py`).
Raw images are kept as integer grey levels (uint8, `0 .. num_levels-1`) with their labels, or, for
files of floats, as float32 values in [0, 1] (`num_levels` = `CONTINUOUS`).
`config.data.image_size` > 0 centre-crops and resizes every image to that square at load time.
The float input a model sees is made on device by `preprocess`,
inside the compiled training step, so dynamic binarization and dequantization draw fresh noise
every minibatch at no host cost:

- `binarization='none'`: x = level / (L − 1), grey levels in [0, 1]; floats as they are.
- `binarization='static'`: one Bernoulli(intensity) draw per pixel at load time, fixed for the run
  (seeded by `config.data.split_seed`); data that is already binary is left as it is.
- `binarization='dynamic'`: a fresh Bernoulli(intensity) draw every minibatch (Burda et al. 2016).
- `dequantize=True`: x = (level + u) / L, u ~ U[0, 1), for continuous likelihoods on grey levels.
  Floats are continuous already: their kind is `dequantized` with or without it, and no noise is
  added.

Evaluation uses a fixed noise key per split, so the test set is binarized / dequantized once and
the same way at every evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import files, likelihoods, sources

BINARIZATIONS = ("none", "static", "dynamic")
CONTINUOUS = 0  # `DataSpec.num_levels` of float data: values in [0, 1], no levels
# Whole splits as loaded: {"train" | "test": (uint8 levels or float32 (N, H, W, C), int32 labels)}.
Splits = files.Splits
# TFDS stores these as uint8 0/1 images; every other TFDS image dataset is taken as 8-bit.
BINARY_TFDS_DATASETS = ("binarized_mnist",)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Static facts about a dataset that models and checks need."""

    name: str
    shape: tuple[int, int, int]  # (height, width, channels)
    # grey levels of the stored data: 2 if binary, 256 for 8-bit, 17 for digits; CONTINUOUS (0)
    # for floats
    num_levels: int
    num_classes: int  # 0 when the dataset has no labels
    kind: str  # what the model sees: likelihoods.BINARY | GREY | DEQUANTIZED (also floats)
    class_names: tuple[str, ...] = ()  # folder datasets: label i is the class folder class_names[i]

    @property
    def num_pixels(self) -> int:
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class Split:
    # uint8 (N, H, W, C) grey levels, or float32 values in [0, 1]: on device, or numpy when the
    # dataset is over `config.data.device_budget_mb` (`streamed`)
    images: jax.Array | np.ndarray
    labels: jax.Array | np.ndarray  # int32 (N,), −1 where the dataset has no labels

    @property
    def streamed(self) -> bool:
        return isinstance(self.images, np.ndarray)

    @property
    def size(self) -> int:
        return int(self.images.shape[0])


@dataclasses.dataclass(frozen=True)
class Dataset:
    spec: DataSpec
    train: Split
    valid: Split | None
    test: Split

    def eval_split(self, name: str) -> Split:
        if name == "valid":
            if self.valid is None:
                raise ValueError(
                    "config.data.eval_split='valid' but config.data.valid_size=0: set a positive "
                    "valid_size or use eval_split='test'."
                )
            return self.valid
        return self.test


def data_kind(num_levels: int, binarization: str, dequantize: bool) -> str:
    if binarization != "none":
        return likelihoods.BINARY
    if dequantize or num_levels == CONTINUOUS:
        return likelihoods.DEQUANTIZED
    if num_levels == 2:
        return likelihoods.BINARY
    return likelihoods.GREY


def check_config(data_cfg) -> None:
    """Early, readable errors for `config.data`."""
    if not data_cfg.name:
        raise ValueError(
            "config.data.name is empty: give a TFDS image dataset name, 'digits', or "
            "folder:PATH, npz:PATH, npy:PATH."
        )
    if data_cfg.binarization not in BINARIZATIONS:
        raise ValueError(
            f"config.data.binarization={data_cfg.binarization!r}: must be one of "
            f"{', '.join(BINARIZATIONS)}."
        )
    if data_cfg.dequantize and data_cfg.binarization != "none":
        raise ValueError(
            "config.data.dequantize=True with config.data.binarization="
            f"{data_cfg.binarization!r}: dequantize grey levels only; use binarization='none'."
        )
    if data_cfg.valid_size < 0:
        raise ValueError(f"config.data.valid_size={data_cfg.valid_size}: must be >= 0.")
    if data_cfg.eval_split not in ("test", "valid"):
        raise ValueError(
            f"config.data.eval_split={data_cfg.eval_split!r}: must be 'test' or 'valid'."
        )
    if not device_budget_mb(data_cfg) > 0:
        raise ValueError(
            f"config.data.device_budget_mb={device_budget_mb(data_cfg)}: must be > 0 (datasets "
            "larger than this many MB stream from host memory)."
        )
    if _image_size(data_cfg) < 0:
        raise ValueError(
            f"config.data.image_size={data_cfg.image_size}: must be >= 0 (0 keeps the size)."
        )


def _image_size(data_cfg) -> int:
    return data_cfg.get("image_size", 0)  # configs written before the field keep their size


# ---------------------------------------------------------------------------------------------
# Loading (host side, once)
# ---------------------------------------------------------------------------------------------


def describe(data_cfg) -> DataSpec:
    """The dataset's spec from metadata only (no data read), so configs are checked up front."""
    check_config(data_cfg)
    class_names = ()
    if files.is_file_dataset(data_cfg.name):  # read and checked whole, here (see files.py)
        found = files.read(data_cfg.name, _image_size(data_cfg))
        images = found.splits["train"][0]
        if "test" not in found.splits and len(images) < sources.FIXED_SPLIT_MIN:
            raise ValueError(
                f"config.data.name={data_cfg.name!r}: {len(images)} examples are too few for a "
                f"fixed 80/20 train/test split (at least {sources.FIXED_SPLIT_MIN})."
            )
        shape, num_levels = images.shape[1:], _stored_levels(images)
        num_classes, class_names = found.num_classes, found.class_names
    elif data_cfg.name in sources.LOCAL_DATASETS:
        local = sources.LOCAL_DATASETS[data_cfg.name]
        shape, num_levels, num_classes = local.shape, local.num_levels, local.num_classes
    else:
        import tensorflow_datasets as tfds

        try:
            features = tfds.builder(data_cfg.name, data_dir=_tfds_dir(data_cfg)).info.features
        except Exception as e:  # DatasetNotFoundError and friends
            reason = str(e).partition("\n")[0]  # not TFDS's list of every dataset it knows
            raise ValueError(
                f"config.data.name={data_cfg.name!r}: not one of "
                f"{', '.join(sources.LOCAL_DATASETS)} and "
                f"not a TFDS dataset ({type(e).__name__}: {reason})."
            ) from e
        if "image" not in features:
            raise ValueError(f"config.data.name={data_cfg.name!r}: TFDS dataset has no 'image'.")
        shape = tuple(int(d) for d in features["image"].shape)
        num_levels = 2 if data_cfg.name in BINARY_TFDS_DATASETS else 256
        num_classes = int(features["label"].num_classes) if "label" in features else 0
    if _image_size(data_cfg):
        shape = (_image_size(data_cfg), _image_size(data_cfg), shape[-1])
    # Binarized floats are binary levels: nothing else in them to discretize.
    if data_cfg.binarization == "static" or (
        num_levels == CONTINUOUS and data_cfg.binarization != "none"
    ):
        num_levels = 2
    return DataSpec(
        name=data_cfg.name,
        shape=tuple(shape),
        num_levels=num_levels,
        num_classes=num_classes,
        kind=data_kind(num_levels, data_cfg.binarization, data_cfg.dequantize),
        class_names=class_names,
    )


def _stored_levels(images: np.ndarray) -> int:
    return 256 if images.dtype == np.uint8 else CONTINUOUS


def _tfds_dir(data_cfg) -> str | None:
    return data_cfg.data_dir or os.environ.get("TFDS_DATA_DIR") or None


def load(data_cfg) -> Dataset:
    """Loads `config.data` into device memory: train (minus validation), validation, test."""
    spec = describe(data_cfg)
    if files.is_file_dataset(data_cfg.name):
        arrays = files.read(data_cfg.name, _image_size(data_cfg)).splits
        if "test" not in arrays:
            arrays = sources.fixed_split(*arrays["train"])
        raw_levels = _stored_levels(arrays["train"][0])
        if spec.class_names:
            logging.info(
                "%s: labels %s",
                data_cfg.name,
                ", ".join(f"{i} = {name}" for i, name in enumerate(spec.class_names)),
            )
    elif data_cfg.name in sources.LOCAL_DATASETS:
        local = sources.LOCAL_DATASETS[data_cfg.name]
        arrays, raw_levels = local.load(), local.num_levels
    else:
        arrays = sources.load_tfds(data_cfg.name, _tfds_dir(data_cfg))
        raw_levels = 2 if data_cfg.name in BINARY_TFDS_DATASETS else 256
    highest = max(int(x.max()) for x, _ in arrays.values())
    if raw_levels != CONTINUOUS and highest >= raw_levels:
        raise ValueError(
            f"config.data.name={data_cfg.name!r}: found grey level {highest}, expected at most "
            f"{raw_levels - 1}."
        )
    if _image_size(data_cfg):
        size = _image_size(data_cfg)
        arrays = {split: (files.square(x, size), y) for split, (x, y) in arrays.items()}

    rng = np.random.default_rng(data_cfg.split_seed)
    if data_cfg.binarization == "static" and raw_levels != 2:
        scale = 1 if raw_levels == CONTINUOUS else raw_levels - 1
        arrays = {
            split: ((rng.random(x.shape) < x / scale).astype(np.uint8), y)
            for split, (x, y) in arrays.items()
        }

    train_x, train_y = arrays["train"]
    valid = None
    if data_cfg.valid_size:
        if data_cfg.valid_size >= len(train_x):
            raise ValueError(
                f"config.data.valid_size={data_cfg.valid_size}: must be smaller than the "
                f"{len(train_x)} training examples."
            )
        order = np.random.default_rng(data_cfg.split_seed).permutation(len(train_x))
        valid_idx, train_idx = order[: data_cfg.valid_size], np.sort(order[data_cfg.valid_size :])
        valid = (train_x[valid_idx], train_y[valid_idx])
        train_x, train_y = train_x[train_idx], train_y[train_idx]

    splits = {"train": (train_x, train_y), "valid": valid, "test": arrays["test"]}
    megabytes = sum(x.nbytes + y.nbytes for x, y in filter(None, splits.values())) / 2**20
    on_device = megabytes <= device_budget_mb(data_cfg)
    if not on_device:
        logging.info(
            "%s: %.0f MB, over config.data.device_budget_mb=%g: streamed from host memory, one "
            "minibatch at a time.",
            data_cfg.name,
            megabytes,
            device_budget_mb(data_cfg),
        )
    made = {k: None if v is None else _split(*v, on_device) for k, v in splits.items()}
    return Dataset(spec=spec, train=made["train"], valid=made["valid"], test=made["test"])


def device_budget_mb(data_cfg) -> float:
    """Datasets up to this many MB are loaded whole into device memory, larger ones stream (a
    config written before the field loads whole, as it did)."""
    return data_cfg.get("device_budget_mb", math.inf)


def _split(images: np.ndarray, labels: np.ndarray, on_device: bool) -> Split:
    """A split in device memory, or left in host memory (numpy) to be streamed."""
    if not on_device:
        return Split(images=np.ascontiguousarray(images), labels=np.asarray(labels, np.int32))
    return Split(images=jnp.asarray(images), labels=jnp.asarray(labels, jnp.int32))


def labelled_subset(
    labels: np.ndarray, num_labelled: int, num_classes: int, seed: int
) -> np.ndarray:
    """Sorted indices of `num_labelled` examples, as many from each class, drawn by `seed`.

    The labelled part of a semi-supervised split (Kingma et al. 2014 use 100 MNIST labels, 10 a
    class); every other training example counts as unlabelled. The same seed gives the same subset.
    """
    labels = np.asarray(labels)
    if num_labelled <= 0 or num_labelled % num_classes:
        raise ValueError(
            f"config.model.num_labels={num_labelled}: a class-balanced subset needs a positive "
            f"multiple of the {num_classes} classes (or 0 / -1 for every label)."
        )
    per_class = num_labelled // num_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(
                f"config.model.num_labels={num_labelled} needs {per_class} examples of class {c}, "
                f"but the training split has {len(members)}."
            )
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def mean_input(split: Split, num_levels: int, dequantize: bool) -> np.ndarray:
    """The mean model input over a split, (H, W, C) float32: the per-pixel E[preprocess(image)]
    (a Bernoulli draw keeps the intensity's mean; dequantization adds half a level)."""
    images = np.asarray(split.images)
    if np.issubdtype(images.dtype, np.floating):
        return images.mean(axis=0, dtype=np.float64).astype(np.float32)
    levels = images.mean(axis=0, dtype=np.float64)
    mean = (levels + 0.5) / num_levels if dequantize else levels / (num_levels - 1)
    return mean.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Preprocessing (device side, inside jit)
# ---------------------------------------------------------------------------------------------


def preprocess(
    images: jax.Array, rng: jax.Array, num_levels: int, binarization: str, dequantize: bool
) -> jax.Array:
    """uint8 grey levels (or float32 values) -> float32 model input in [0, 1], as described in the
    module docstring."""
    if jnp.issubdtype(images.dtype, jnp.floating):  # continuous already: nothing to dequantize
        if binarization == "dynamic":
            return jax.random.bernoulli(rng, images).astype(jnp.float32)
        return images
    levels = images.astype(jnp.float32)
    if dequantize:
        return (levels + jax.random.uniform(rng, levels.shape)) / num_levels
    x = levels / (num_levels - 1)
    if binarization == "dynamic" and num_levels > 2:
        return jax.random.bernoulli(rng, x).astype(jnp.float32)
    return x
