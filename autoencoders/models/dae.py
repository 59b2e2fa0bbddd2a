"""Denoising autoencoders: encode a corrupted x̃, reconstruct the clean x (Vincent et al. 2008).

`Denoising` is a mixin over any family whose `terms` encode `encoder_input(batch)`: it draws a
fresh corruption x̃ ~ C(x̃ | x) (`autoencoders.corruptions`, `config.model.corruption` at
`config.model.noise_level`) from the step's key and hands the family a batch whose encoder input is
x̃ and whose target is still x. So

- `dae`, the denoising AE: loss = −log p(x | g(f(x̃))) (nats per image);
- `dvae`, the denoising VAE (Im et al. 2017): loss = −E_{q(z|x̃)}[log p(x|z)] + β KL(q(z|x̃) || p(z)).
  With β = 1 this is still a bound on −log p(x) for every x̃ (any q gives an ELBO), so `neg_elbo`
  keeps its meaning: it is a looser bound than the plain VAE's, as q only sees a corrupted x.

Evaluation reports the same terms on one fixed corruption of the split, plus the terms on clean
inputs under `clean_<name>` (e.g. `clean_neg_elbo`), comparable to the `ae` and `vae` families.
"""

from __future__ import annotations

import jax

from autoencoders import corruptions
from autoencoders.models import ae, base, vae


class Denoising:
    """Mixin: the next family in the MRO, trained on corrupted inputs with clean targets."""

    denoising = True

    def term_units(self) -> dict[str, str]:
        units = super().term_units()
        clean = {f"clean_{k}": f"{v} (clean, uncorrupted input)" for k, v in units.items()}
        return {**units, **clean}

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        base.Model.require_model_fields(config, "corruption", "noise_level")
        corruptions.check_config(config.model)

    @property
    def corruption_description(self) -> str:
        model_cfg = self.config.model
        return f"{model_cfg.corruption} noise at level {model_cfg.noise_level}"

    def corrupt(self, x: jax.Array, rng: jax.Array) -> jax.Array:
        """x̃ ~ C(x̃ | x), in [0, 1] like x."""
        model_cfg = self.config.model
        return corruptions.corrupt(model_cfg.corruption, rng, x, model_cfg.noise_level)

    def loss(self, params, batch: base.Batch, rng: jax.Array) -> base.Objective:
        noise_rng, model_rng = jax.random.split(rng)
        # The target stays batch['x'] (clean); only the encoder sees the corrupted copy.
        noisy = {**batch, "x_in": self.corrupt(batch["x"], noise_rng)}
        return super().loss(params, noisy, model_rng)

    def eval_terms(self, params, batch: base.Batch, rng: jax.Array) -> dict[str, jax.Array]:
        clean = super().loss(params, batch, rng)[1]  # the parent family's terms, clean input
        clean_terms = {f"clean_{k}": v for k, v in clean.items() if k != "loss"}
        return {**self.loss(params, batch, rng)[1], **clean_terms}


class DenoisingAE(Denoising, ae.Autoencoder):
    """`dae`: a deterministic autoencoder trained to undo `config.model.corruption`."""


class DenoisingVAE(Denoising, vae.VAE):
    """`dvae`: a VAE whose posterior q(z | x̃) sees a corrupted input; the target is clean."""
