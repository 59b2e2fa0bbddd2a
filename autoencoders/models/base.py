"""The interface every model family implements, and the parts they share.

A family is one module with one `Model` subclass. It builds its networks from the config, and
defines `terms(params, batch, rng)`: per-example quantities (nats per image) including `loss`, the
training objective. From that the base class derives the pure objective
`loss(params, batch, rng) -> (loss, metrics)`, the evaluation terms, and a default `train_step`.
A family with a multi-phase update (e.g. the adversarial AE) overrides `init_state`/`train_step`.

Batches are dicts: `x` float images (B, H, W, C) in [0, 1] as the likelihood expects them, `y` int
labels (B,) (−1 when unknown), and optionally `x_in`, what the encoder sees when it differs from the
target `x` (a denoising family's corrupted input; see `encoder_input`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from autoencoders import likelihoods, networks, optim
from autoencoders.data import DataSpec

Array = jax.Array
Batch = dict[str, Array]
Params = Any


class Model:
    """Base class: encoder, decoder and likelihood built from the config."""

    def __init__(self, config, spec: DataSpec):
        self.config = config
        self.spec = spec
        self.latent_dim = int(config.model.latent_dim)
        self.likelihood = likelihoods.make(config.likelihood, spec.num_levels)
        self.units = likelihoods.check_compatible(config.likelihood, spec.kind, spec.num_levels)
        self.encoder = networks.make_encoder(config.network, self.encoder_out_dim)
        self.decoder = networks.make_decoder(config.network, spec.shape, self.likelihood.num_params)
        self.tied = isinstance(self.decoder, networks.TiedDecoder)

    # --- configuration --------------------------------------------------------------------------

    @classmethod
    def check_config(cls, config) -> None:
        """Family-specific config checks; called before data loads or anything compiles."""
        if config.model.latent_dim <= 0:
            raise ValueError(f"config.model.latent_dim={config.model.latent_dim}: must be > 0.")

    @staticmethod
    def require_model_fields(config, *fields: str) -> None:
        """A clear error when a family's own `config.model` fields are absent (a generic config)."""
        missing = [f for f in fields if f not in config.model]
        if missing:
            family = config.model.family
            raise ValueError(
                f"config.model is missing {', '.join(missing)}: family {family!r} needs "
                f"{', '.join(f'config.model.{f}' for f in fields)}; start from "
                f"configs/{family}.py, which sets them."
            )

    @property
    def encoder_out_dim(self) -> int:
        return self.latent_dim

    # Whether the encoder's output is the code itself (deterministic autoencoders), so a decoder
    # can mirror it with tied weights (`config.network.tied`).
    encoder_outputs_code: bool = False

    # Semi-supervised families keep the labels of only `num_labelled` training examples (a
    # class-balanced subset, `data.labelled_subset`); each training step then also gets
    # `labelled_batch_size` of them as batch['x_labelled'], batch['y_labelled'] (see
    # training.make_train_epoch). 0 for every other family.
    num_labelled: int = 0
    labelled_batch_size: int = 0

    # Metric names carry what the number is: a Bernoulli on grey levels gives cross-entropy.
    @property
    def recon_name(self) -> str:
        return "recon_nll" if self.units.is_log_likelihood else "recon_xent"

    @property
    def bound_name(self) -> str:
        return "neg_elbo" if self.units.is_log_likelihood else "xent_plus_kl"

    # --- networks -------------------------------------------------------------------------------

    def init(self, rng: Array, batch: Batch) -> Params:
        enc_rng, dec_rng = jax.random.split(rng)
        z = jnp.zeros((batch["x"].shape[0], self.latent_dim))
        encoder = self.encoder.init(enc_rng, batch["x"])
        if self.tied:
            kernels = networks.encoder_kernels(encoder)
            return {"encoder": encoder, "decoder": self.decoder.init(dec_rng, z, kernels)}
        return {"encoder": encoder, "decoder": self.decoder.init(dec_rng, z)}

    def decode(self, params: Params, z: Array, cond: Array | None = None) -> Array:
        """Likelihood parameters (B, H, W, C, P) for latents z [and a conditioning vector]."""
        if self.tied:
            if cond is not None:  # `networks.check_tied` admits no conditional family
                raise ValueError("A tied decoder takes no conditioning input.")
            return self.decoder.apply(
                params["decoder"], z, networks.encoder_kernels(params["encoder"])
            )
        return self.decoder.apply(params["decoder"], z, cond)

    def decode_mean(self, params: Params, z: Array, cond: Array | None = None) -> Array:
        """Mean image E[x | z] (B, H, W, C)."""
        return self.likelihood.mean(self.decode(params, z, cond))

    def encode(self, params: Params, x: Array) -> Array:
        """A deterministic code for x (the posterior mean for stochastic encoders)."""
        return self.encoder.apply(params["encoder"], x)

    def condition(self, batch: Batch) -> Array | None:
        """What the encoder and decoder are conditioned on: nothing, or a one-hot label (CVAE)."""
        return None

    @staticmethod
    def encoder_input(batch: Batch) -> Array:
        """The encoder's input: `x_in` where a family corrupts it (denoising), else `x` itself."""
        return batch.get("x_in", batch["x"])

    def reconstruct(self, params: Params, x: Array) -> Array:
        return self.decode_mean(params, self.encode(params, x))

    def recon_terms(
        self, params: Params, z: Array, x: Array, cond: Array | None = None
    ) -> tuple[Array, Array]:
        """(−log p(x|z), squared error of the mean), each summed per image.

        The per-pixel terms are computed on one flattened pixel axis: XLA:CPU sums a trailing
        (H, W, 1) block several times slower (it dominated importance-sampled evaluation).
        """
        out = self.decode(params, z, cond)
        out = out.reshape(*out.shape[:-4], -1, out.shape[-1])  # (B, H·W·C, params per pixel)
        x = x.reshape(*x.shape[:-3], -1)
        nll = -jnp.sum(self.likelihood.log_prob(out, x), axis=-1)
        sq_err = jnp.sum((self.likelihood.mean(out) - x) ** 2, axis=-1)
        return nll, sq_err

    # --- objective ------------------------------------------------------------------------------

    def terms(self, params: Params, batch: Batch, rng: Array) -> dict[str, Array]:
        """Per-example terms (B,), including `loss`, the quantity training minimises."""
        raise NotImplementedError

    # Diagnostics that evaluation reports but training steps leave out (XLA then never computes
    # them): the squared error of the mean image is a visible share of a small model's CPU step.
    eval_only_terms: tuple[str, ...] = ("sq_err",)

    def loss(self, params: Params, batch: Batch, rng: Array) -> tuple[Array, dict[str, Array]]:
        """The pure training objective: mean over the batch of `terms()['loss']`, with the batch
        means of the other terms (except `eval_only_terms`) as metrics."""
        metrics = self.training_metrics(self.terms(params, batch, rng))
        return metrics["loss"], metrics

    def training_metrics(self, terms: dict[str, Array]) -> dict[str, Array]:
        """Batch means of per-example terms, leaving out `eval_only_terms`."""
        return {k: jnp.mean(v) for k, v in terms.items() if k not in self.eval_only_terms}

    def eval_terms(self, params: Params, batch: Batch, rng: Array) -> dict[str, Array]:
        """Per-example evaluation terms (B,); averaged over a split by the evaluator."""
        return self.terms(params, batch, rng)

    # --- training -------------------------------------------------------------------------------

    def init_state(self, rng: Array, batch: Batch, tx: optax.GradientTransformation):
        return optim.TrainState.create(self.init(rng, batch), tx)

    def train_step(self, state: optim.TrainState, batch: Batch, rng: Array):
        """One gradient step on `loss`; returns the new state and the batch metrics."""
        grads, metrics = jax.grad(self.loss, has_aux=True)(state.params, batch, rng)
        return state.apply_gradients(grads), metrics
