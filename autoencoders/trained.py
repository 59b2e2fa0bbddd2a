"""A trained run as a Python object: `autoencoders.load(workdir)`.

    import autoencoders
    model = autoencoders.load("runs/vae")            # the latest checkpoint (or epoch=N)
    z = model.encode(images)                         # raw uint8 images, or floats in [0, 1]
    x = model.decode(z)                              # mean images, floats in [0, 1]

Images go in as the dataset stores them — uint8 levels (0..255 for MNIST; 0..16 for `digits`) or
floats in [0, 1] — with or without the batch and channel axes, and get the run's own
preprocessing (`data.preprocess`: binarization, dequantization) with a fixed key (`seed`), as the
evaluation does. A vmapped member is loaded from its own directory (`<workdir>/members/<name>`);
a run still training loads from its newest checkpoint that restores.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import data, density, models, sources
from autoencoders import workdir as workdirs

Array = jax.Array
BATCH = 500  # examples per compiled call: bounded memory for any number of images


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A restored run: its config, model family object, parameters and checkpoint epoch."""

    workdir: str
    config: Any
    model: models.Model
    params: Any
    epoch: int

    @property
    def spec(self) -> data.DataSpec:
        return self.model.spec

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    # --- inputs -------------------------------------------------------------------------------

    def _raw_levels(self) -> int:
        """Levels of the images as the dataset stores them (before a static binarization);
        `data.CONTINUOUS` for float data."""
        if self.config.data.binarization != "static":
            return self.spec.num_levels
        local = sources.LOCAL_DATASETS.get(self.config.data.name)
        return local.num_levels if local is not None else 256

    def _batched(self, images: Any) -> np.ndarray:
        """Images as (N, H, W, C) of this run's shape: a single image or grey images without
        their channel axis are accepted; anything else is a ValueError naming the shapes."""
        x = np.asarray(images)
        shape = self.spec.shape
        if x.shape == shape or (shape[-1] == 1 and x.shape == shape[:2]):
            x = x[None]
        if shape[-1] == 1 and x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != shape:
            raise ValueError(
                f"images of shape {np.asarray(images).shape}: this run's images are {shape} "
                "(height, width, channels; after config.data.image_size): give (N, H, W, C), "
                "(N, H, W) if grey, or one image."
            )
        return x

    def model_input(self, images: Any, seed: int = 0) -> Array:
        """Raw images -> the float inputs the model was trained on (the run's preprocessing)."""
        x = self._batched(images)
        raw = self._raw_levels()
        top = 255 if raw == data.CONTINUOUS else raw - 1  # float datasets: uint8 as 0..255
        if x.dtype == np.uint8:
            if x.size and int(x.max()) > top:
                raise ValueError(
                    f"uint8 images with level {int(x.max())}: {self.config.data.name} images "
                    f"have levels 0..{top} (or give floats in [0, 1])."
                )
            fraction = x.astype(np.float32) / top
        elif np.issubdtype(x.dtype, np.floating):
            if not np.all(np.isfinite(x)) or x.min(initial=0) < 0 or x.max(initial=0) > 1:
                raise ValueError("float images must be finite and in [0, 1].")
            fraction = x.astype(np.float32)
        else:
            raise ValueError(f"images of dtype {x.dtype}: give uint8 levels or floats in [0, 1].")
        key = jax.random.key(seed)
        binarization, dequantize = self.config.data.binarization, bool(self.config.data.dequantize)
        if binarization == "static" and raw != 2:
            # A fresh draw of the static binarization: the same distribution the run saw.
            return jax.random.bernoulli(key, jnp.asarray(fraction)).astype(jnp.float32)
        if self.spec.num_levels == data.CONTINUOUS:  # float data: values, not levels
            return data.preprocess(jnp.asarray(fraction), key, 0, binarization, dequantize)
        levels = np.round(fraction * (self.spec.num_levels - 1)).astype(np.uint8)
        return data.preprocess(
            jnp.asarray(levels), key, self.spec.num_levels, binarization, dequantize
        )

    def _labels(self, labels: Any, n: int) -> Array:
        """Labels as int32 (n,); conditional families need them, the others get −1."""
        if labels is None:
            if self.model.conditional:
                raise ValueError(
                    f"{self.config.model.family} is conditional: pass labels= (0.."
                    f"{self.spec.num_classes - 1}), one per image or one for all."
                )
            return jnp.full((n,), -1, jnp.int32)
        y = np.broadcast_to(np.asarray(labels, np.int64), (n,))
        if self.model.conditional and (y.min() < 0 or y.max() >= self.spec.num_classes):
            raise ValueError(f"labels must be in 0..{self.spec.num_classes - 1}.")
        return jnp.asarray(y, jnp.int32)

    # --- the model ----------------------------------------------------------------------------

    def encode(self, images: Any, labels: Any = None, seed: int = 0) -> np.ndarray:
        """Codes (N, latent_dim): posterior means for stochastic encoders."""
        x = self.model_input(images, seed)
        return density.encode(self.model, self.params, x, self._labels(labels, len(x)), BATCH)

    def decode(self, z: Any, labels: Any = None) -> np.ndarray:
        """Mean images E[x | z [, y]] (N, H, W, C) in [0, 1] for codes z (N, latent_dim)."""
        z = jnp.atleast_2d(jnp.asarray(z, jnp.float32))
        if z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"codes of shape {z.shape}: this run's latent_dim is {self.latent_dim}."
            )
        y = self._labels(labels, len(z))
        cond = self.model.condition({"y": y}) if self.model.conditional else None
        decode = _compiled_decode(self.model)
        parts = []
        for i in range(0, len(z), BATCH):
            part_cond = None if cond is None else cond[i : i + BATCH]
            parts.append(np.asarray(decode(self.params, z[i : i + BATCH], part_cond)))
        return np.concatenate(parts)

    def reconstruct(self, images: Any, labels: Any = None, seed: int = 0) -> np.ndarray:
        """Mean of p(x | z [, y]) at each image's code, (N, H, W, C) in [0, 1]."""
        z = self.encode(images, labels, seed)
        return self.decode(z, labels)

    def sample(self, num: int, seed: int = 0, labels: Any = None) -> np.ndarray:
        """Mean images of `num` draws z ~ p(z) (given labels for conditional families)."""
        if self.model.prior is None:
            raise ValueError(f"{self.config.model.family} has no prior to sample from.")
        y = None if labels is None else self._labels(labels, num)
        return np.asarray(self.model.sample(self.params, jax.random.key(seed), num, y))

    def log_likelihood(
        self, images: Any, labels: Any = None, num_samples: int = 1000, seed: int = 0
    ) -> np.ndarray:
        """log p(x) per image in nats (log p(x | y) for conditional families), estimated by
        importance sampling with `num_samples` samples (Burda et al.'s IWAE estimator: a lower
        bound in expectation, rising to log p(x) with more samples)."""
        if not self.model.latent_variable:
            raise ValueError(
                f"{self.config.model.family} is a deterministic autoencoder: it defines no "
                "density p(x) to evaluate."
            )
        if not self.model.units.is_log_likelihood:
            raise ValueError(
                f"this run's likelihood is {self.model.units.description}: a cross-entropy on "
                "grey levels, not a likelihood, so it has no log p(x)."
            )
        x = self.model_input(images, seed)
        y = self._labels(labels, len(x))
        key = jax.random.fold_in(jax.random.key(seed), 1)
        estimates = density.importance_sampled_log_likelihood(
            self.model, self.params, x, y, key, num_samples
        )
        return estimates[num_samples]


@functools.lru_cache(maxsize=16)
def _compiled_decode(model: models.Model):
    """model.decode_mean compiled once per model (not once per call)."""
    return jax.jit(model.decode_mean)


def load(workdir: str, epoch: int | None = None) -> TrainedModel:
    """The run in `workdir` at its newest checkpoint that restores (or `epoch`)."""
    config, model, params, epoch = workdirs.restore_params(workdir, epoch)
    return TrainedModel(workdir=workdir, config=config, model=model, params=params, epoch=epoch)
