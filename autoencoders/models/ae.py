"""Deterministic autoencoder: z = f(x), loss = −log p(x | g(z)) (nats per image).

With a Gaussian likelihood of fixed σ this is squared error (up to scale and a constant); with a
Bernoulli it is cross-entropy. A linear AE with squared error spans the PCA subspace.
"""

from __future__ import annotations

from autoencoders.models import base


class Autoencoder(base.Model):
    encoder_outputs_code = True  # z = f(x): a tied decoder can mirror f (`config.network.tied`)

    def term_units(self) -> dict[str, str]:
        loss = "nats per image: −log p(x | g(f(x))), plus the family's weighted penalty if any"
        return {**super().term_units(), "loss": loss}

    def loss(self, params, batch, rng):
        del rng  # deterministic
        x = batch["x"]
        nll, sq_err = self.recon_terms(params, self.encode(params, self.encoder_input(batch)), x)
        return base.mean_loss({"loss": nll, self.recon_name: nll, "sq_err": sq_err})
