"""Importance weighted autoencoder (Burda et al. 2016), and the VAE trained with K samples.

Both draw K posterior samples z_k ~ q(z|x) per example and use the log-weights
log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) (`VAE.log_importance_weights`, shape (K, B));
K is `config.model.num_samples` and `config.model.objective` picks the loss:

- `iwae`: −L_K = −(logsumexp_k log w_k − log K) (`bounds.importance_weighted_bound`), a bound
  that tightens as K grows;
- `vae`: −(1/K) Σ_k log w_k (`bounds.mean_elbo`), the ELBO estimated with K samples: a
  lower-variance gradient for the same, looser bound (the "VAE" column of Burda et al.'s Table 1).

With K = 1 both are the one-sample ELBO (with a Monte Carlo KL).

`config.model.gradient` picks how the objective's gradient is estimated (the same expectation):

- `reparameterization` (the default, the paper's): the gradient of the objective's samples;
- `dreg`: for the inference network, only the samples' path, reweighted: DReG for `iwae`
  (Tucker et al. 2019, `bounds.reweighted_paths`), "sticking the landing" for `vae` (Roeder et
  al. 2017): log q at stopped parameters. The generative network's gradient is unchanged.
  Rainforth et al. 2018 show that the plain gradient's signal-to-noise ratio for q falls as K
  grows; DReG's does not. What a step costs under each: `python -m benchmarks.gradient_estimators`.

Metrics, nats per image: `neg_iwae_bound` (−L_K at the training K, whatever the objective), and the
`vae` family's terms — `neg_elbo` (analytic KL), `recon_nll`, `kl`, `sq_err` — from one further
posterior sample, so they mean the same as in the `vae` family. A Bernoulli likelihood on grey
levels renames them as that family does (`iwae_xent`, `xent_plus_kl`, `recon_xent`).
"""

from __future__ import annotations

import jax

from autoencoders import bounds
from autoencoders.models import base, vae

OBJECTIVES = ("iwae", "vae")
GRADIENTS = ("reparameterization", "dreg")


class IWAE(vae.VAE):
    """`iwae`: K-sample training of a VAE, by the importance-weighted bound or the mean ELBO."""

    # The parameters of q (top-level keys of params); the rest are p's.
    inference_networks: tuple[str, ...] = ("encoder",)

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        cls.require_model_fields(config, "objective", "num_samples")
        if config.model.objective not in OBJECTIVES:
            raise ValueError(
                f"config.model.objective={config.model.objective!r}: must be one of "
                f"{', '.join(OBJECTIVES)}."
            )
        gradient = config.model.get("gradient", GRADIENTS[0])
        if gradient not in GRADIENTS:
            raise ValueError(
                f"config.model.gradient={gradient!r}: must be one of {', '.join(GRADIENTS)}."
            )
        if config.model.num_samples < 1:
            raise ValueError(f"config.model.num_samples={config.model.num_samples}: must be >= 1.")
        if config.model.beta != 1:
            raise ValueError(
                f"config.model.beta={config.model.beta}: the iwae family trains unweighted bounds, "
                "so beta must be 1 (use family 'vae' for a β-VAE)."
            )

    @property
    def iw_bound_name(self) -> str:
        return "neg_iwae_bound" if self.units.is_log_likelihood else "iwae_xent"

    @property
    def headline(self) -> str:
        return self.iw_bound_name

    @property
    def progress_terms(self) -> tuple[str, ...]:
        return (self.iw_bound_name, *super().progress_terms)

    def term_units(self) -> dict[str, str]:
        return {
            **super().term_units(),
            "loss": "nats per image: −L_K (objective iwae) or the K-sample mean −ELBO (vae)",
            self.iw_bound_name: self.units.description
            + " (importance-weighted bound at the training k)",
        }

    def training_bounds(
        self, params, batch: base.Batch, rng: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(the objective to maximise, L_K), per example, from K = `num_samples` samples drawn
        with `rng`; the objective's gradient is `config.model.gradient`'s estimator."""
        model_cfg = self.config.model
        k = model_cfg.num_samples
        if model_cfg.get("gradient", GRADIENTS[0]) == "reparameterization":
            log_w = self.log_importance_weights(params, batch, rng, k)
            iw_bound = bounds.importance_weighted_bound(log_w)
            objective = iw_bound if model_cfg.objective == "iwae" else bounds.mean_elbo(log_w)
            return objective, iw_bound
        # Path derivatives: log q at stopped parameters, so that q's networks get only the
        # gradient along the samples' path z_k(φ), and p's networks their usual one.
        stopped = jax.lax.stop_gradient(params)
        if model_cfg.objective == "vae":  # sticking the landing: the score term dropped
            log_w = self.log_importance_weights(params, batch, rng, k, stopped)
            return bounds.mean_elbo(log_w), bounds.importance_weighted_bound(log_w)
        # DReG: L_K's gradient, each sample's path weighted once more by its normalised weight.
        log_w = self.log_importance_weights(params, batch, rng, k, stopped, reweight_paths=True)
        iw_bound = bounds.importance_weighted_bound(log_w)
        return iw_bound, iw_bound

    def loss(self, params, batch: base.Batch, rng: jax.Array) -> base.Objective:
        weights_rng, elbo_rng = jax.random.split(rng)
        objective, iw_bound = self.training_bounds(params, batch, weights_rng)
        # The vae family's one-sample terms: one decoder pass besides the K above.
        one_sample = super().loss(params, batch, elbo_rng)[1]
        return base.mean_loss({**one_sample, "loss": -objective, self.iw_bound_name: -iw_bound})
