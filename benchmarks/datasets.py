"""The benchmarks' images: MNIST from TFDS where it is there (or asked for), else synthetic uint8
images of the same shape, held on the device; a model built for other images (the 64×64 RGB conv
VAE) gets synthetic images of its own shape (`data_for`). Speed does not depend on the pixels."""

from __future__ import annotations

import dataclasses
import os

import jax.numpy as jnp
import numpy as np

from autoencoders import data
from benchmarks.architectures import ARCHITECTURES, IMAGE_SHAPE, Architecture

MNIST_TRAIN = 60_000


@dataclasses.dataclass(frozen=True)
class BenchData:
    """A run's images on the device, and a sentence for the record saying what they are."""

    description: str
    spec: data.DataSpec
    train: data.Split  # uint8 grey levels on device
    test: data.Split


def load_data(choice: str, num_train: int, num_test: int) -> BenchData:
    tfds_dir = os.environ.get("TFDS_DATA_DIR", "")
    has_mnist = bool(tfds_dir) and os.path.isdir(os.path.join(tfds_dir, "mnist"))
    if choice == "mnist" or (choice == "auto" and has_mnist):
        dataset = data.load(ARCHITECTURES["mlp"].jax_config().data)  # mnist, dynamic binarization
        return BenchData(
            f"MNIST from TFDS ({tfds_dir or 'the TFDS default directory'}): "
            f"{dataset.train.size:,} train, {dataset.test.size:,} test images, 8-bit grey levels, "
            "binarized dynamically",
            dataset.spec,
            dataset.train,
            dataset.test,
        )
    why = "chosen by --data" if choice == "synthetic" else "$TFDS_DATA_DIR holds no mnist"
    return synthetic_data(IMAGE_SHAPE, num_train, num_test, why)


def synthetic_data(
    shape: tuple[int, int, int], num_train: int, num_test: int, why: str
) -> BenchData:
    """Uniform random uint8 images of `shape` (speed does not depend on the pixels)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> data.Split:
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.int32)
        return data.Split(jnp.asarray(images), jnp.asarray(labels))

    spec = data.DataSpec(
        name="synthetic",
        shape=shape,
        num_levels=256,
        num_classes=10,
        kind=data.data_kind(256, "dynamic", False),
    )
    size = "MNIST-sized 28×28×1" if shape == IMAGE_SHAPE else "×".join(map(str, shape))
    return BenchData(
        f"synthetic ({why}): uniform random uint8 grey levels 0..255, {size}, "
        f"{num_train:,} train and {num_test:,} test images, binarized dynamically",
        spec,
        split(num_train),
        split(num_test),
    )


# Training images of a model whose image shape is not the run's data's (the 64×64 RGB conv VAE):
# synthetic, at most this many (12 KiB each at 64×64×3).
OTHER_SHAPE_TRAIN = 10_000


def data_for(arch: Architecture, bench: BenchData) -> BenchData:
    """`bench` if its images have `arch.image_shape`, else synthetic images of that shape."""
    if bench.spec.shape == arch.image_shape:
        return bench
    why = f"{arch.name} needs {'×'.join(map(str, arch.image_shape))} images"
    return synthetic_data(
        arch.image_shape, min(bench.train.size, OTHER_SHAPE_TRAIN), arch.batch_size, why
    )
