"""Unsupervised clustering with an adversarial autoencoder (Makhzani et al. 2015, Section 6).

The encoder splits its output into a cluster code y = softmax(logits) over K =
`config.model.num_clusters` clusters and a style code z of `config.model.latent_dim` units; the
decoder sees both, [y, z] (so the model's `latent_dim`, the code size, is K + style units). Two
discriminators (the same `disc_hidden` architecture, their own parameters) push y onto one-hot
draws of a uniform categorical and z onto N(0, I) (`priors.CategoricalAndNormal`); the AAE's
phases (reconstruction, discriminators, encoder as generator) are those of `models/aae.py`, with
`disc_loss` and `gen_loss` the sums over the two adversaries (`cluster_*` and `style_*` are the
parts). A test image's cluster is argmax y; no label is seen in training. How clusters become
class predictions (the paper: each cluster takes the label of the image it is most confident
about) is the reproduction's measure (configs/reproductions/aae_clustering.py).

`config.model.balance_weight` λ adds λ·KL(q̄(y) ‖ uniform) to the generator phase, q̄(y) the
minibatch mean of q(y | x): the marginal-entropy term of Springenberg's CatGAN (2016), not in the
AAE paper. Why: a discriminator judges one code at a time, and at the start every image's y is
nearly the same vector, so its gradient moves all of them towards the same corner. Measured with
λ = 0 on MNIST (configs/aae_cluster.py otherwise): after 10 steps every training image's argmax is
one cluster, after 90 its softmax is saturated there (q = 0.998, where the softmax passes on
0.2 % of a gradient), and all 10,000 test images stay in one cluster. The term is a property of a
training minibatch, not of an image: training logs it as `cluster_balance` (nats; 0 when the
minibatch uses the clusters equally, log K when it uses one); evaluation's terms leave it out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from autoencoders import priors
from autoencoders.data import DataSpec
from autoencoders.models import aae, base

Array = jax.Array


class ClusteringAAE(aae.AdversarialAE):
    """`aae_cluster`: an AAE whose code is [categorical cluster y, Gaussian style z]."""

    @classmethod
    def check_code_prior(cls, config) -> None:
        cls.require_model_fields(config, "num_clusters", "balance_weight")
        if config.model.num_clusters < 2:
            raise ValueError(
                f"config.model.num_clusters={config.model.num_clusters}: must be >= 2."
            )
        if config.model.balance_weight < 0:
            raise ValueError(
                f"config.model.balance_weight={config.model.balance_weight}: must be >= 0."
            )
        for field in ("prior", "conditional"):
            if field in config.model:
                raise ValueError(
                    f"config.model.{field} is the aae family's; aae_cluster's prior is fixed "
                    "(one-hot clusters, N(0, I) style) and sees no labels: remove the field."
                )

    @property
    def encoder_out_dim(self) -> int:
        return int(self.config.model.num_clusters) + int(self.config.model.latent_dim)

    def set_code_prior(self, model_cfg, spec: DataSpec) -> None:
        self.label_prior = False  # clusters are found, not given
        self.num_clusters = int(model_cfg.num_clusters)
        self.style_dim = int(model_cfg.latent_dim)
        self.latent_dim = self.num_clusters + self.style_dim  # the code [y, z] the decoder sees
        self.latent_prior = priors.CategoricalAndNormal(self.num_clusters, self.style_dim)

    def term_units(self) -> dict[str, str]:
        per_part = "nats per image: {} (2·log 2 ≈ 1.386 at chance)"
        return {
            **super().term_units(),
            "disc_loss": "nats per image: the two discriminators' losses summed (4·log 2 ≈ 2.77 "
            "at chance)",
            "gen_loss": "nats per image: the two generator losses summed, −log D_y(y) − log D_z(z)",
            "cluster_disc_loss": per_part.format("the cluster code's discriminator loss"),
            "style_disc_loss": per_part.format("the style code's discriminator loss"),
            "cluster_gen_loss": "nats per image: −log D_y(y), y the cluster code",
            "style_gen_loss": "nats per image: −log D_z(z), z the style code",
            "cluster_balance": "nats per training minibatch (config.train.batch_size images): "
            "KL(their mean q(y|x) ‖ uniform over the clusters); 0: clusters used equally, log K: "
            "one; the generator phase minimises gen_loss + balance_weight · cluster_balance",
        }

    def _parts(self, v: Array) -> tuple[Array, Array]:
        """(the first K columns, the rest): of a code [y, z], or of the encoder's output."""
        return v[..., : self.num_clusters], v[..., self.num_clusters :]

    def encode(self, params: base.Params, x: Array, cond: Array | None = None) -> Array:
        y_logits, style = self._parts(super().encode(params, x, cond))
        return jnp.concatenate([jax.nn.softmax(y_logits), style], axis=-1)

    def cluster_logits(self, params: base.Params, x: Array) -> Array:
        """The encoder's cluster logits (B, K): q(y | x) = softmax of them. Rank images by these
        rather than by q, which rounds to exactly 1 in float32 once one logit leads the rest by
        about 17 or more."""
        return self._parts(super().encode(params, x))[0]

    def cluster_probs(self, codes: Array) -> Array:
        """q(y | x) from codes [y, z] (`encode`'s output): (..., K)."""
        return self._parts(codes)[0]

    def cluster_heads(self, params: base.Params) -> Array:
        """Each cluster's mean image at its one-hot y with style z = 0: (K, H, W, C)."""
        heads = jnp.concatenate(
            [jnp.eye(self.num_clusters), jnp.zeros((self.num_clusters, self.style_dim))], axis=-1
        )
        return self.decode_mean(params, heads)

    def init(self, rng: Array, batch: base.Batch) -> base.Params:
        ae_rng, cluster_rng, style_rng = jax.random.split(rng, 3)
        params = base.Model.init(self, ae_rng, batch)  # the decoder's input is the whole code
        y, z = self._parts(jnp.zeros((batch["x"].shape[0], self.latent_dim)))
        params["discriminator"] = {
            "cluster": self.discriminator.init(cluster_rng, y),
            "style": self.discriminator.init(style_rng, z),
        }
        return params

    def adversarial_terms(
        self, params: base.Params, x: Array, labels: Array, rng: Array
    ) -> dict[str, Array]:
        del labels  # never seen
        codes = self._parts(self.encode(params, x))
        draws = self._parts(self.prior.sample(rng, x.shape[0]))
        terms = {}
        for part, code, draw in zip(("cluster", "style"), codes, draws, strict=True):
            disc = params["discriminator"][part]
            logits = [self.discriminator.apply(disc, v)[:, 0] for v in (code, draw)]
            for name, value in aae.gan_losses(*logits).items():
                terms[f"{part}_{name}"] = value
        for name in ("disc_loss", "gen_loss"):
            terms[name] = terms[f"cluster_{name}"] + terms[f"style_{name}"]
        return terms

    def cluster_balance(self, params: base.Params, x: Array) -> Array:
        """KL(q̄(y) ‖ uniform) of the minibatch x, q̄ its mean q(y | x): CatGAN's marginal-entropy
        term, log K minus the entropy of q̄ (nats)."""
        mean_probs = jnp.mean(self.cluster_probs(self.encode(params, x)), axis=0)
        # + 1e-12: a cluster no image uses adds 0, with a finite gradient.
        return jnp.sum(mean_probs * jnp.log(mean_probs * self.num_clusters + 1e-12))

    def generator_objective(
        self, params: base.Params, x: Array, labels: Array, rng: Array
    ) -> tuple[Array, dict[str, Array]]:
        """The AAE's mean generator loss plus λ·`cluster_balance`; logs both."""
        gen, metrics = super().generator_objective(params, x, labels, rng)
        balance = self.cluster_balance(params, x)
        return gen + self.config.model.balance_weight * balance, {
            **metrics,
            "cluster_balance": balance,
        }
