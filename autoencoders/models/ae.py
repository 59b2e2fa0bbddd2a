"""Deterministic autoencoder: z = f(x), loss = −log p(x | g(z)) (nats per image).

With a Gaussian likelihood of fixed σ this is squared error (up to scale and a constant); with a
Bernoulli it is cross-entropy. A linear AE with squared error spans the PCA subspace.

`config.model.code_activation` (configs/ae.py) is the code's nonlinearity: `linear` (z is the
encoder's last dense layer) or `sigmoid`, z = sigmoid(W h + b). With no hidden layers
(`config.network.hidden=()`) and a tied decoder, `sigmoid` is the classic one-layer autoencoder of
Vincent et al. (2010) and Rifai et al. (2011), whose code is its 1,000 hidden units: the denoising
AE corrupts its input and the contractive AE penalises ∂z/∂x through the sigmoid.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from autoencoders.models import base

# The code's nonlinearity by name (an elementwise function of the encoder's last dense layer).
CODE_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda a: a,
    "sigmoid": jax.nn.sigmoid,
}
DEFAULT_CODE_ACTIVATION = "linear"  # what runs written before the field had


def code_activation(config) -> str:
    """config.model.code_activation; runs written before the field had the default."""
    return config.model.get("code_activation", DEFAULT_CODE_ACTIVATION)


class Autoencoder(base.Model):
    encoder_outputs_code = True  # z = f(x): a tied decoder can mirror f (`config.network.tied`)
    added_fields = {"model.code_activation": DEFAULT_CODE_ACTIVATION}  # noqa: RUF012 - read only

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        activation = code_activation(config)
        if activation not in CODE_ACTIVATIONS:
            raise ValueError(
                f"config.model.code_activation={activation!r}: must be one of "
                f"{', '.join(CODE_ACTIVATIONS)}."
            )

    def encode(self, params, x, cond=None):
        return CODE_ACTIVATIONS[code_activation(self.config)](super().encode(params, x, cond))

    def term_units(self) -> dict[str, str]:
        loss = "nats per image: −log p(x | g(f(x))), plus the family's weighted penalty if any"
        return {**super().term_units(), "loss": loss}

    def loss(self, params, batch, rng):
        del rng  # deterministic
        x = batch["x"]
        nll, sq_err = self.recon_terms(params, self.encode(params, self.encoder_input(batch)), x)
        return base.mean_loss({"loss": nll, self.recon_name: nll, "sq_err": sq_err})
