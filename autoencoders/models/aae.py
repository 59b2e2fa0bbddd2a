"""Adversarial autoencoder (Makhzani et al. 2015): a deterministic autoencoder whose code
distribution q(z) = E_x[δ(z − f(x))] is pushed onto a prior p(z) by a GAN on the code.

Networks: encoder f(x) -> z, decoder p(x | z) (the likelihood of `config.likelihood`), and a
discriminator D(z [, one-hot y]) -> logit of "z came from the prior". Each training step has two
phases, each with its own optax optimizer state (Adam moments are per phase):

1. reconstruction: encoder and decoder minimise −log p(x | f(x)) (nats per image);
2. regularisation: the discriminator minimises −log D(z_p) − log(1 − D(f(x))), z_p ~ p(z)
   (`disc_loss`, nats; 2·log 2 ≈ 1.386 when it cannot tell them apart), then the encoder, as the
   generator, minimises −log D(f(x)) (`gen_loss`, the non-saturating GAN loss),
   `config.model.generator_steps` times.

Priors (`config.model.prior`): `normal` N(0, I), `mixture` (10 2-D Gaussians on a circle),
`swiss_roll`; see autoencoders/priors.py. With `config.model.conditional=True` the label, one-hot,
is fed to the discriminator with z and prior draws come from the label's own part of the prior
(its mixture component, swiss-roll segment or normal sector), so each class is placed in its part;
an unknown label (−1) is a zero vector and draws from the whole prior. The discriminator learns at
`disc_learning_rate_factor` times the learning rate (the lecture's code: 1/5, with 2 generator
steps; see configs/aae.py for why the defaults are 1 and 1).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from autoencoders import data, networks, priors
from autoencoders.data import DataSpec
from autoencoders.models import base, cvae

Array = jax.Array


@flax.struct.dataclass
class AAEState:
    """params {encoder, decoder, discriminator}; opt_state one per phase (optimizers are built
    from the configured one: `phase_optimizers`)."""

    step: Array
    params: Any
    opt_state: dict[str, Any]


def _apply(tx: optax.GradientTransformation, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def gan_losses(code_logit: Array, prior_logit: Array) -> dict[str, Array]:
    """Per-example discriminator and (non-saturating) generator losses, nats, from the
    discriminator's logits on the encoder's codes and on prior draws."""
    return {
        # −log D(z_p) − log(1 − D(f(x))), with log σ(l) = −softplus(−l).
        "disc_loss": jax.nn.softplus(-prior_logit) + jax.nn.softplus(code_logit),
        "gen_loss": jax.nn.softplus(-code_logit),  # −log D(f(x))
    }


class AdversarialAE(base.Model):
    """`aae`: reconstruction phase, then discriminator and generator phases, every step."""

    multi_phase = True

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        cls.require_model_fields(
            config, "disc_hidden", "disc_learning_rate_factor", "generator_steps"
        )
        cls.check_code_prior(config)
        model_cfg = config.model
        if not model_cfg.disc_hidden or any(int(w) <= 0 for w in model_cfg.disc_hidden):
            raise ValueError(
                f"config.model.disc_hidden={tuple(model_cfg.disc_hidden)}: need positive widths."
            )
        if model_cfg.disc_learning_rate_factor <= 0:
            raise ValueError(
                f"config.model.disc_learning_rate_factor={model_cfg.disc_learning_rate_factor}: "
                "must be > 0."
            )
        if model_cfg.generator_steps < 1:
            raise ValueError(
                f"config.model.generator_steps={model_cfg.generator_steps}: must be >= 1."
            )

    @classmethod
    def check_code_prior(cls, config) -> None:
        """The fields that choose the code's prior (`config.model.prior`, `conditional`)."""
        cls.require_model_fields(config, "prior", "conditional")
        model_cfg = config.model
        if model_cfg.prior not in priors.LATENT_PRIORS:
            raise ValueError(
                f"config.model.prior={model_cfg.prior!r}: must be one of "
                f"{', '.join(priors.LATENT_PRIORS)}."
            )
        if model_cfg.prior != "normal" and model_cfg.latent_dim != 2:
            raise ValueError(
                f"config.model.prior={model_cfg.prior!r} is 2-D: set config.model.latent_dim=2 "
                f"(got {model_cfg.latent_dim})."
            )
        if model_cfg.conditional:
            if model_cfg.latent_dim < 2:
                raise ValueError(
                    "config.model.conditional=True needs config.model.latent_dim >= 2."
                )
            cvae.require_labels(data.describe(config.data), "aae with conditional=True")

    def __init__(self, config, spec: DataSpec):
        super().__init__(config, spec)
        self.discriminator = networks.MLP(
            (*config.model.disc_hidden, 1), config.network.activation, activate_final=False
        )
        self.set_code_prior(config.model, spec)

    def set_code_prior(self, model_cfg, spec: DataSpec) -> None:
        """`latent_prior`, and whether the label picks its part (`label_prior`)."""
        self.label_prior = bool(model_cfg.conditional)
        if self.label_prior:
            cvae.require_labels(spec, "aae with conditional=True")
        # One part of the prior per class; 10 (the paper's figures) when the data has no labels.
        self.num_classes = spec.num_classes or 10
        self.latent_prior = priors.make_latent_prior(
            model_cfg.prior, self.latent_dim, self.num_classes
        )

    @property
    def prior(self) -> priors.Prior:
        return self.latent_prior

    @property
    def progress_terms(self) -> tuple[str, ...]:
        return (self.headline, "disc_loss", "gen_loss")

    def term_units(self) -> dict[str, str]:
        return {
            **super().term_units(),
            "loss": "nats per image: the reconstruction phase's objective −log p(x | f(x))",
            "disc_loss": "nats per image: discriminator loss (2·log 2 ≈ 1.386 at chance)",
            "gen_loss": "nats per image: generator loss −log D(f(x))",
        }

    # --- networks -------------------------------------------------------------------------------

    def discriminator_input(self, z: Array, labels: Array) -> Array:
        if not self.label_prior:
            return z
        return jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes)], axis=-1)

    def discriminate(self, params: base.Params, z: Array, labels: Array) -> Array:
        """Logit (B,) that z (with its label, when conditional) is a prior draw."""
        inputs = self.discriminator_input(z, labels)
        return self.discriminator.apply(params["discriminator"], inputs)[:, 0]

    def init(self, rng: Array, batch: base.Batch) -> base.Params:
        ae_rng, disc_rng = jax.random.split(rng)
        params = super().init(ae_rng, batch)
        z = jnp.zeros((batch["x"].shape[0], self.latent_dim))
        params["discriminator"] = self.discriminator.init(
            disc_rng, self.discriminator_input(z, batch["y"])
        )
        return params

    # --- objective ------------------------------------------------------------------------------

    def adversarial_terms(
        self, params: base.Params, x: Array, labels: Array, rng: Array
    ) -> dict[str, Array]:
        """Per-example (B,) discriminator and generator losses (nats), one prior draw each."""
        code_logit = self.discriminate(params, self.encode(params, x), labels)
        prior_labels = labels if self.label_prior else None
        prior_draw = self.prior.sample(rng, x.shape[0], prior_labels)
        prior_logit = self.discriminate(params, prior_draw, labels)
        return gan_losses(code_logit, prior_logit)

    def generator_objective(
        self, params: base.Params, x: Array, labels: Array, rng: Array
    ) -> tuple[Array, dict[str, Array]]:
        """What the encoder minimises in the generator phase, and the metrics it logs: the
        batch mean of `gen_loss`."""
        gen = jnp.mean(self.adversarial_terms(params, x, labels, rng)["gen_loss"])
        return gen, {"gen_loss": gen}

    def loss(self, params, batch, rng):
        """Reconstruction (`loss`, the first phase's objective) and the adversarial losses; what
        evaluation reports (training takes the three phases of `train_step`)."""
        x = batch["x"]
        nll, sq_err = self.recon_terms(params, self.encode(params, x), x)
        adversarial = self.adversarial_terms(params, x, batch["y"], rng)
        return base.mean_loss({"loss": nll, self.recon_name: nll, "sq_err": sq_err, **adversarial})

    # --- training -------------------------------------------------------------------------------

    def phase_optimizers(self, tx: optax.GradientTransformation) -> dict[str, Any]:
        """One optimizer per phase: the configured one, the discriminator's at
        `disc_learning_rate_factor` times its learning rate."""
        factor = self.config.model.disc_learning_rate_factor
        disc_tx = optax.chain(tx, optax.scale(factor))  # = the learning rate times `factor`
        return {"reconstruction": tx, "discriminator": disc_tx, "generator": tx}

    def init_state(self, rng: Array, batch: base.Batch, tx: optax.GradientTransformation):
        params = self.init(rng, batch)
        txs = self.phase_optimizers(tx)
        autoencoder = {"encoder": params["encoder"], "decoder": params["decoder"]}
        return AAEState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state={
                "reconstruction": txs["reconstruction"].init(autoencoder),
                "discriminator": txs["discriminator"].init(params["discriminator"]),
                "generator": txs["generator"].init(params["encoder"]),
            },
        )

    def train_step(
        self, state: AAEState, batch: base.Batch, rng: Array, tx: optax.GradientTransformation
    ):
        txs = self.phase_optimizers(tx)
        x, labels = batch["x"], batch["y"]
        disc_rng, gen_rng = jax.random.split(rng)
        params, opt_state = dict(state.params), dict(state.opt_state)

        # 1. Reconstruction phase: encoder and decoder.
        def recon_loss(autoencoder):
            nll, _ = self.recon_terms(autoencoder, self.encode(autoencoder, x), x)
            return jnp.mean(nll), {self.recon_name: jnp.mean(nll)}

        autoencoder = {"encoder": params["encoder"], "decoder": params["decoder"]}
        grads, metrics = jax.grad(recon_loss, has_aux=True)(autoencoder)
        autoencoder, opt_state["reconstruction"] = _apply(
            txs["reconstruction"], grads, opt_state["reconstruction"], autoencoder
        )
        params.update(autoencoder)

        # 2a. Regularisation phase, discriminator: prior draws against the (updated) codes.
        def disc_loss(disc_params):
            terms = self.adversarial_terms(
                {**params, "discriminator": disc_params}, x, labels, disc_rng
            )
            return jnp.mean(terms["disc_loss"])

        metrics["disc_loss"], grads = jax.value_and_grad(disc_loss)(params["discriminator"])
        params["discriminator"], opt_state["discriminator"] = _apply(
            txs["discriminator"], grads, opt_state["discriminator"], params["discriminator"]
        )

        # 2b. Regularisation phase, generator: the encoder learns to fool the discriminator.
        def gen_loss(encoder_params):
            return self.generator_objective(
                {**params, "encoder": encoder_params}, x, labels, gen_rng
            )

        for _ in range(int(self.config.model.generator_steps)):
            (_, gen_metrics), grads = jax.value_and_grad(gen_loss, has_aux=True)(params["encoder"])
            metrics.update(gen_metrics)
            params["encoder"], opt_state["generator"] = _apply(
                txs["generator"], grads, opt_state["generator"], params["encoder"]
            )

        metrics["loss"] = metrics[self.recon_name]
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics
