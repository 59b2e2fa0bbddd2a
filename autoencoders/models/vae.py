"""Variational autoencoder (Kingma & Welling 2014) with a β weight on the KL (Higgins et al. 2017).

q(z|x) = N(μ(x), diag σ²(x)), p(z) = N(0, I), p(x|z) from `config.likelihood`. The negative ELBO,
−E_q[log p(x|z)] + KL(q(z|x) || p(z)), is reported in nats per image with one posterior sample;
the training loss weights the KL by β (β = 1: the ELBO).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from autoencoders import bounds, priors
from autoencoders.models import base


class VAE(base.Model):
    latent_variable = True

    @property
    def prior(self) -> priors.StandardNormal:
        return priors.StandardNormal(self.latent_dim)

    @property
    def headline(self) -> str:
        return self.bound_name

    @property
    def progress_terms(self) -> tuple[str, ...]:
        return (self.bound_name, self.recon_name, "kl")

    def term_units(self) -> dict[str, str]:
        return {
            **super().term_units(),
            "loss": "nats per image: reconstruction + β·KL (β = 1: the negative ELBO)",
            self.bound_name: self.units.description + " (one z sample)",
            "kl": "nats per image: KL(q(z|x) || p(z))",
        }

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.model.beta < 0:
            raise ValueError(f"config.model.beta={config.model.beta}: must be >= 0.")

    @property
    def encoder_out_dim(self) -> int:
        return 2 * self.latent_dim  # mean and log-variance

    def posterior(
        self, params, x: jax.Array, cond: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """(mean, log_var) of q(z|x) [q(z|x, cond) in conditional families]."""
        mean, log_var = jnp.split(self.encoder.apply(params["encoder"], x, cond), 2, axis=-1)
        return mean, log_var

    def encode(self, params, x, cond: jax.Array | None = None):
        return self.posterior(params, x, cond)[0]

    def loss(self, params, batch, rng):
        x, cond = batch["x"], self.condition(batch)
        mean, log_var = self.posterior(params, self.encoder_input(batch), cond)
        z = priors.reparameterize(rng, mean, log_var)
        nll, sq_err = self.recon_terms(params, z, x, cond)
        kl = priors.kl_diag_gaussian_to_standard_normal(mean, log_var)
        return base.mean_loss(
            {
                "loss": nll + self.config.model.beta * kl,
                self.bound_name: nll + kl,
                self.recon_name: nll,
                "kl": kl,
                "sq_err": sq_err,
            }
        )

    def log_importance_weights(
        self,
        params,
        batch: dict[str, jax.Array],
        rng: jax.Array,
        num_samples: int,
        density_params=None,
        reweight_paths: bool = False,
    ) -> jax.Array:
        """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k ~ q(z|x); shape (K, B).

        logsumexp_k(log w) − log K is the IWAE bound (Burda et al. 2016); K = 1 gives the ELBO,
        and K → ∞ gives log p(x), which is how the test log-likelihood is estimated.
        For the path-derivative gradients (`iwae.IWAE.training_bounds`): `density_params`, where
        log q is evaluated (default `params`, which draw the samples); `reweight_paths`, DReG's
        backward pass (`bounds.reweighted_paths`).
        """
        x, cond = batch["x"], self.condition(batch)
        mean, log_var = self.posterior(params, x, cond)
        q_mean, q_log_var = (
            (mean, log_var) if density_params is None else self.posterior(density_params, x, cond)
        )

        def log_weight(z):
            nll, _ = self.recon_terms(params, z, x, cond)
            return (
                -nll + self.prior.log_prob(z) - priors.diag_gaussian_log_prob(z, q_mean, q_log_var)
            )

        keys = jax.random.split(rng, num_samples)
        z = jax.vmap(lambda key: priors.reparameterize(key, mean, log_var))(keys)
        log_weights = jax.vmap(log_weight)
        return bounds.reweighted_paths(log_weights, z) if reweight_paths else log_weights(z)
