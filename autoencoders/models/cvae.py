"""Conditional VAE (Sohn et al. 2015; the lecture's "M2 with every label"): q(z|x, y), p(x|y, z).

The encoder and the decoder both see the one-hot label y next to their usual input, p(z) = N(0, I)
and p(y) plays no part, so the negative ELBO −E_q[log p(x|y,z)] + KL(q(z|x,y) || p(z)) bounds
−log p(x|y), in nats per image (the `vae` family's terms, conditioned). Since z no longer has to
carry the class, it is free to carry style: decoding one z with every label gives "analogies".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from autoencoders import data, priors
from autoencoders.data import DataSpec
from autoencoders.models import base, vae


def require_labels(spec: DataSpec, family: str) -> None:
    """A clear error for families that condition on, or predict, a class label."""
    if spec.num_classes == 0:
        raise ValueError(
            f"config.model.family={family!r} needs class labels, but config.data.name="
            f"{spec.name!r} has none: use a labelled dataset (mnist, fashion_mnist, digits)."
        )


class ConditionalVAE(vae.VAE):
    """`cvae`: the VAE with the one-hot label fed to the encoder and the decoder."""

    conditional = True

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        require_labels(data.describe(config.data), config.model.family)

    def __init__(self, config, spec: DataSpec):
        require_labels(spec, config.model.family)
        super().__init__(config, spec)
        self.num_classes = spec.num_classes

    def one_hot(self, labels: jax.Array) -> jax.Array:
        """(B,) int labels -> (B, num_classes) float; an unknown label (−1) gives zeros."""
        return jax.nn.one_hot(labels, self.num_classes)

    def condition(self, batch: base.Batch) -> jax.Array:
        return self.one_hot(batch["y"])

    def init(self, rng: jax.Array, batch: base.Batch) -> base.Params:
        enc_rng, dec_rng = jax.random.split(rng)
        cond = self.one_hot(batch["y"])
        z = jnp.zeros((batch["x"].shape[0], self.latent_dim))
        return {
            "encoder": self.encoder.init(enc_rng, batch["x"], cond),
            "decoder": self.decoder.init(dec_rng, z, cond),
        }

    def sample(self, params, rng: jax.Array, num: int, labels: jax.Array | None = None):
        """Mean images of prior draws z decoded with `labels` (default: 0, 1, 2, ... cycling)."""
        if labels is None:
            labels = jnp.arange(num) % self.num_classes
        z = priors.StandardNormal(self.latent_dim).sample(rng, num)
        return self.decode_mean(params, z, self.one_hot(labels))
