"""Stochastic contractive autoencoder: AE loss + λ E_ε ‖h(x) − h(x + ε)‖², ε ~ N(0, σ² I).

The lecture's sampled stand-in for the contractive penalty: for small σ,
h(x + ε) − h(x) ≈ J ε, so E‖h(x) − h(x + ε)‖² ≈ σ² ‖J‖²_F (the `cae` penalty times σ²; set λ
accordingly). σ is `config.model.noise_std`, the expectation is averaged over
`config.model.num_noise_samples` fresh draws per example and step, and λ is
`config.model.contractive_weight`. Gradients flow through both h(x) and h(x + ε).

x + ε is *not* clipped to [0, 1]: it is never reconstructed or shown, it only probes how fast the
code moves around x, and clipping would cancel the probe at the many saturated (0 or 1) pixels.

Metric `code_shift_sq` is the unweighted E‖h(x) − h(x + ε)‖² per image. The scale caveat of
`models/cae.py` (shrink the code, grow the decoder) applies here too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from autoencoders.models import cae


class StochasticContractiveAE(cae.ContractivePenalty):
    """`scae`."""

    penalty_name = "code_shift_sq"
    penalty_unit = "E‖h(x) − h(x + ε)‖² per image (code units²)"
    penalty_fields = ("noise_std", "num_noise_samples")

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if not config.model.noise_std > 0:
            raise ValueError(f"config.model.noise_std={config.model.noise_std}: must be > 0.")
        if config.model.num_noise_samples < 1:
            raise ValueError(
                f"config.model.num_noise_samples={config.model.num_noise_samples}: must be >= 1."
            )

    def penalty(self, params, x: jax.Array, rng: jax.Array) -> jax.Array:
        code = self.encode(params, x)
        sigma = self.config.model.noise_std

        def shift_sq(key: jax.Array) -> jax.Array:
            moved = self.encode(params, x + sigma * jax.random.normal(key, x.shape, x.dtype))
            return jnp.sum((code - moved) ** 2, axis=-1)

        keys = jax.random.split(rng, self.config.model.num_noise_samples)
        return jnp.mean(jax.vmap(shift_sq)(keys), axis=0)
