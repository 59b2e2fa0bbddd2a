"""Two stochastic layers (Burda, Grosse & Salakhutdinov 2016's second architecture), trained as a
VAE or an IWAE with K samples.

Generative model p(z2) p(z1 | z2) p(x | z1), inference model q(z1 | x) q(z2 | z1):

    p(z2) = N(0, I)                          z2: `config.model.latent_dim` units (50 in the paper)
    p(z1 | z2) = N(μ_p(z2), diag σ²_p(z2))   MLP `config.model.hidden2` (100-100), z1: `latent1_dim`
    p(x | z1)   from `config.likelihood`      the decoder of `config.network` (200-200, mirrored)
    q(z1 | x) = N(μ_q(x), diag σ²_q(x))      the encoder of `config.network` (200-200)
    q(z2 | z1) = N(μ(z1), diag σ²(z1))       MLP `config.model.hidden2` (100-100)

The log importance weight of a sample (z1, z2) ~ q is
log w = log p(x | z1) + log p(z1 | z2) + log p(z2) − log q(z1 | x) − log q(z2 | z1)
(`log_importance_weights`, shape (K, B)), so the IWAE and k-sample VAE objectives of
`models/iwae.py` (`config.model.objective`, `num_samples`) and the importance-sampled test
likelihood of `density.py` apply unchanged. Its one-sample terms (`neg_elbo`, `recon_nll`, `kl`,
`sq_err`) come from one further sample, as in the `iwae` family; `kl` here is the one-sample
estimate log q(z1, z2 | x) − log p(z1, z2) (the two-layer KL has no closed form).

The code of x (`encode`: figures, probes, active units) is the top layer's mean, μ of q(z2 | z1)
at z1 = μ_q(x); `layer_means` gives both layers' means (active units per layer). `decode` maps a
top-layer code through the mean of p(z1 | z2), so prior samples are ancestral draws of z2 decoded
through the means; `reconstruct` decodes the mean of q(z1 | x) directly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from autoencoders import bounds, networks, priors
from autoencoders.models import base, iwae


class HierarchicalVAE(iwae.IWAE):
    """`hvae`: two stochastic layers, trained by the IWAE bound or the k-sample ELBO."""

    inference_networks = ("encoder", "encoder2")  # q(z1 | x), q(z2 | z1)

    def __init__(self, config, spec):
        super().__init__(config, spec)  # encoder: q(z1|x); decoder: p(x|z1)
        self.latent1_dim = int(config.model.latent1_dim)
        hidden2 = tuple(int(w) for w in config.model.hidden2)
        activation = config.network.activation
        self.encoder2 = networks.MLP((*hidden2, 2 * self.latent_dim), activation, False)
        self.decoder2 = networks.MLP((*reversed(hidden2), 2 * self.latent1_dim), activation, False)

    @classmethod
    def check_config(cls, config) -> None:
        cls.require_model_fields(config, "latent1_dim", "hidden2")
        super().check_config(config)
        if config.model.latent1_dim <= 0:
            raise ValueError(f"config.model.latent1_dim={config.model.latent1_dim}: must be > 0.")
        if any(int(w) <= 0 for w in config.model.hidden2):
            raise ValueError(
                f"config.model.hidden2={tuple(config.model.hidden2)}: widths must be > 0."
            )

    @property
    def encoder_out_dim(self) -> int:
        return 2 * int(self.config.model.latent1_dim)  # q(z1|x): mean and log-variance

    def term_units(self) -> dict[str, str]:
        return {
            **super().term_units(),
            self.bound_name: self.units.description + " (one sample of z1, z2)",
            "kl": "nats per image: log q(z1, z2 | x) − log p(z1, z2) at one sample (an "
            "estimate of the KL)",
        }

    # --- networks -------------------------------------------------------------------------------

    def init(self, rng, batch):
        keys = jax.random.split(rng, 4)
        z1 = jnp.zeros((batch["x"].shape[0], self.latent1_dim))
        z2 = jnp.zeros((batch["x"].shape[0], self.latent_dim))
        return {
            "encoder": self.encoder.init(keys[0], batch["x"]),
            "decoder": self.decoder.init(keys[1], z1),
            "encoder2": self.encoder2.init(keys[2], z1),
            "decoder2": self.decoder2.init(keys[3], z2),
        }

    @staticmethod
    def _gaussian(out: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var

    def q_z2(self, params, z1):
        """(mean, log_var) of q(z2 | z1)."""
        return self._gaussian(self.encoder2.apply(params["encoder2"], z1))

    def p_z1(self, params, z2):
        """(mean, log_var) of p(z1 | z2)."""
        return self._gaussian(self.decoder2.apply(params["decoder2"], z2))

    def layer_means(self, params, x) -> dict[str, jax.Array]:
        """The posterior means of both layers: μ_q(x), and μ of q(z2 | z1 = μ_q(x))."""
        mean1 = self.posterior(params, x)[0]
        return {"z1": mean1, "z2": self.q_z2(params, mean1)[0]}

    def encode(self, params, x, cond=None):
        return self.layer_means(params, x)["z2"]

    def decode(self, params, z, cond=None):
        """Likelihood parameters of p(x | z1) at z1 = the mean of p(z1 | z2 = z)."""
        return self.decoder.apply(params["decoder"], self.p_z1(params, z)[0])

    def reconstruct(self, params, x, y=None):
        return self.likelihood.mean(
            self.decoder.apply(params["decoder"], self.posterior(params, x)[0])
        )

    # --- objective ------------------------------------------------------------------------------

    def _draw(self, params, mean1, log_var1, key):
        """One sample (z1, z2) ~ q and q(z2 | z1)'s mean and log-variance at it."""
        key1, key2 = jax.random.split(key)
        z1 = priors.reparameterize(key1, mean1, log_var1)
        mean2, log_var2 = self.q_z2(params, z1)
        return z1, priors.reparameterize(key2, mean2, log_var2), mean2, log_var2

    def _sample_terms(self, params, x, mean1, log_var1, sample, density_params=None):
        """A drawn sample's (log w, −log p(x|z1), squared error, log q − log p of z); log q at
        `density_params` where given (see `VAE.log_importance_weights`), else from the draw."""
        z1, z2, mean2, log_var2 = sample
        p_mean1, p_log_var1 = self.p_z1(params, z2)
        nll, sq_err = self.pixel_terms(self.decoder.apply(params["decoder"], z1), x)
        if density_params is not None:
            mean1, log_var1 = self.posterior(density_params, x)
            mean2, log_var2 = self.q_z2(density_params, z1)
        log_q = priors.diag_gaussian_log_prob(z1, mean1, log_var1) + priors.diag_gaussian_log_prob(
            z2, mean2, log_var2
        )
        log_p = priors.diag_gaussian_log_prob(z1, p_mean1, p_log_var1) + self.prior.log_prob(z2)
        return -nll + log_p - log_q, nll, sq_err, log_q - log_p

    def log_importance_weights(
        self, params, batch, rng, num_samples, density_params=None, reweight_paths=False
    ):
        """log w_k = log p(x, z1_k, z2_k) − log q(z1_k, z2_k | x), (z1_k, z2_k) ~ q; (K, B).
        `density_params` and `reweight_paths` as in `VAE.log_importance_weights`."""
        x = batch["x"]
        mean1, log_var1 = self.posterior(params, x)
        keys = jax.random.split(rng, num_samples)
        samples = jax.vmap(lambda key: self._draw(params, mean1, log_var1, key))(keys)

        def log_weight(sample):
            return self._sample_terms(params, x, mean1, log_var1, sample, density_params)[0]

        log_weights = jax.vmap(log_weight)
        return (
            bounds.reweighted_paths(log_weights, samples)
            if reweight_paths
            else log_weights(samples)
        )

    def loss(self, params, batch, rng):
        weights_rng, elbo_rng = jax.random.split(rng)
        objective, iw_bound = self.training_bounds(params, batch, weights_rng)
        x = batch["x"]
        mean1, log_var1 = self.posterior(params, x)
        sample = self._draw(params, mean1, log_var1, elbo_rng)
        log_w1, nll, sq_err, kl = self._sample_terms(params, x, mean1, log_var1, sample)
        return base.mean_loss(
            {
                "loss": -objective,
                self.iw_bound_name: -iw_bound,
                self.bound_name: -log_w1,
                self.recon_name: nll,
                "kl": kl,
                "sq_err": sq_err,
            }
        )
