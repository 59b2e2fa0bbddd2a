"""The model-family contract: what every family declares and defines, and the parts they share.

A family is one module with one `Model` subclass, registered by one line in `models/__init__.py`.
It builds its networks from the config and defines its objective, the pure function
`loss(params, batch, rng) -> (loss, terms)`: the batch-mean loss that the compiled epoch
(`autoencoders/epoch.py`) differentiates, and its per-example terms, which evaluation averages.

Everything the trainer, evaluation and reports need to know about a family is declared here, never
probed: the capabilities (class attributes in the "contract" block below: a latent-variable model
with a posterior to importance-sample, conditioning on the label, input corruption, labelled
minibatches, a multi-phase update with its own state), the `prior` codes are drawn from (None for
a plain autoencoder), the `headline` metric a run is judged by, the terms the progress line
shows, and the unit of every term (`term_units`), which training writes into the metrics `start`
event for reports to read.

Batches are dicts: `x` float images (B, H, W, C) in [0, 1] as the likelihood expects them, `y` int
labels (B,) (−1 when unknown), and optionally `x_in`, what the encoder sees when it differs from the
target `x` (a denoising family's corrupted input; see `encoder_input`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autoencoders import likelihoods, networks, optim, priors
from autoencoders.data import DataSpec

Array = jax.Array
Batch = dict[str, Array]
Params = Any
Objective = tuple[Array, dict[str, Array]]  # (the batch-mean loss, its terms)

SQ_ERR_UNIT = (
    "squared error per image: (x − x̂)² summed over pixels, mean over images; x is the model "
    "input in [0, 1] (Hinton & Salakhutdinov's unit)"
)


def mean_loss(terms: dict[str, Array]) -> Objective:
    """(the batch mean of terms['loss'], terms): how a family returns its per-example terms."""
    return jnp.mean(terms["loss"]), terms


class Model:
    """Base class: encoder, decoder and likelihood built from the config."""

    # --- the contract: capabilities each family declares -----------------------------------------
    # A latent-variable model: q(z|x) (`posterior`) and `log_importance_weights`, so evaluation
    # estimates log p(x) by importance sampling and reports active units.
    latent_variable: bool = False
    # Encoder and decoder see the one-hot label (`condition`); log p(x) becomes log p(x | y).
    conditional: bool = False
    # Trained on corrupted inputs with clean targets (`corrupt`, `corruption_description`);
    # evaluation adds `clean_*` terms and a denoising figure.
    denoising: bool = False
    # Each training step also gets labelled examples beside its minibatch (`training_context`,
    # `add_training_inputs`).
    labelled_minibatches: bool = False
    # Its own state and update (`init_state`, `train_step`: several optimizers); otherwise the
    # compiled epoch takes one gradient step of `loss` with the configured optimizer.
    multi_phase: bool = False
    # The encoder's output is the code itself (deterministic autoencoders), so a decoder can mirror
    # it with tied weights (`config.network.tied`).
    encoder_outputs_code: bool = False
    # Config fields the family gained after runs were written, each with the value such runs were
    # trained with: a config.json without one resumes and counts as finished as if it held it.
    added_fields: dict[str, Any] = {}  # noqa: RUF012 - read only

    def __init__(self, config, spec: DataSpec):
        self.config = config
        self.spec = spec
        self.latent_dim = int(config.model.latent_dim)
        self.likelihood = likelihoods.make(config.likelihood, spec.num_levels)
        self.units = likelihoods.check_compatible(config.likelihood, spec.kind, spec.num_levels)
        self.encoder = networks.make_encoder(config.network, self.encoder_out_dim)
        self.decoder = networks.make_decoder(config.network, spec.shape, self.likelihood.num_params)
        self.tied = isinstance(self.decoder, networks.TiedDecoder)

    @property
    def prior(self) -> priors.Prior | None:
        """p(z), the distribution codes are drawn from to generate; None for plain autoencoders."""
        return None

    # Metric names carry what the number is: a Bernoulli on grey levels gives cross-entropy.
    @property
    def recon_name(self) -> str:
        return "recon_nll" if self.units.is_log_likelihood else "recon_xent"

    @property
    def bound_name(self) -> str:
        return "neg_elbo" if self.units.is_log_likelihood else "xent_plus_kl"

    @property
    def headline(self) -> str:
        """The term a run is judged and compared by (lower is better)."""
        return self.recon_name

    @property
    def progress_terms(self) -> tuple[str, ...]:
        """The evaluation terms the progress line shows, headline first."""
        return (self.headline,)

    def term_units(self) -> dict[str, str]:
        """The unit of every term this family reports (`eval_terms` and training metrics)."""
        return {
            "loss": "nats per image: the training objective (see the family's module)",
            self.recon_name: self.units.description,
            "sq_err": SQ_ERR_UNIT + "; as in training (VAEs: decoded from one sample z ~ q(z|x))",
        }

    def term_unit(self, name: str) -> str:
        return self.term_units().get(
            name, f"per-image mean of the {type(self).__name__} term {name!r} (see its module)"
        )

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

    def encode(self, params: Params, x: Array, cond: Array | None = None) -> Array:
        """A deterministic code for x (the posterior mean for stochastic encoders)."""
        return self.encoder.apply(params["encoder"], x)

    def condition(self, batch: Batch) -> Array | None:
        """What the encoder and decoder are conditioned on: nothing, or a one-hot label
        (`conditional` families)."""
        return None

    @staticmethod
    def encoder_input(batch: Batch) -> Array:
        """The encoder's input: `x_in` where a family corrupts it (denoising), else `x` itself."""
        return batch.get("x_in", batch["x"])

    def codes(self, params: Params, x: Array, y: Array | None = None) -> tuple[Array, Array | None]:
        """(z, cond): the code of x (the posterior mean for stochastic encoders; given the label y
        in `conditional` families) and what the decoder is conditioned on (None, or one-hot y)."""
        cond = self.condition({"x": x, "y": y}) if self.conditional else None
        return self.encode(params, x, cond), cond

    def reconstruct(self, params: Params, x: Array, y: Array | None = None) -> Array:
        """Mean of p(x | z [, y]) at the code of x."""
        z, cond = self.codes(params, x, y)
        return self.decode_mean(params, z, cond)

    def sample(self, params: Params, rng: Array, num: int, labels: Array | None = None) -> Array:
        """Mean images of decoded draws from the `prior` (from the labels' parts of it if given)."""
        if self.prior is None:
            raise ValueError(f"{type(self).__name__} has no prior to sample.")
        return self.decode_mean(params, self.prior.sample(rng, num, labels))

    def recon_terms(
        self, params: Params, z: Array, x: Array, cond: Array | None = None
    ) -> tuple[Array, Array]:
        """(−log p(x|z), squared error of the mean), each summed per image.

        The per-pixel terms are computed on one flattened pixel axis: XLA:CPU sums a trailing
        (H, W, 1) block several times slower (it dominated importance-sampled evaluation).
        """
        return self.pixel_terms(self.decode(params, z, cond), x)

    def pixel_terms(self, out: Array, x: Array) -> tuple[Array, Array]:
        """`recon_terms` from the decoder's output `out` (..., H, W, C, params per pixel)."""
        out = out.reshape(*out.shape[:-4], -1, out.shape[-1])  # (B, H·W·C, params per pixel)
        x = x.reshape(*x.shape[:-3], -1)
        nll = -jnp.sum(self.likelihood.log_prob(out, x), axis=-1)
        sq_err = jnp.sum((self.likelihood.mean(out) - x) ** 2, axis=-1)
        return nll, sq_err

    # --- objective ------------------------------------------------------------------------------

    def loss(self, params: Params, batch: Batch, rng: Array) -> Objective:
        """The family's objective, a pure function: (the batch mean of the per-example `loss`
        that training minimises, the terms). Terms are per-example (B,) arrays — `loss` itself
        and what it is made of, in the units of `term_units` — or batch means where a family's
        batch has several parts (M2); the compiled epoch differentiates the first output and
        logs the batch means of the terms."""
        raise NotImplementedError

    # Diagnostics that evaluation reports but training steps leave out (XLA then never computes
    # them): the squared error of the mean image is a visible share of a small model's CPU step.
    eval_only_terms: tuple[str, ...] = ("sq_err",)

    def training_metrics(self, terms: dict[str, Array]) -> dict[str, Array]:
        """Batch means of the terms, leaving out `eval_only_terms`."""
        return {k: jnp.mean(v) for k, v in terms.items() if k not in self.eval_only_terms}

    def eval_terms(self, params: Params, batch: Batch, rng: Array) -> dict[str, Array]:
        """Per-example evaluation terms (B,); averaged over a split by the evaluator."""
        return self.loss(params, batch, rng)[1]

    # --- training -------------------------------------------------------------------------------

    def training_context(self, train_labels: np.ndarray, seed: int) -> Any:
        """Constants the training steps of `labelled_minibatches` families need beyond each
        minibatch (arrays), computed once from the training labels; None for the others."""
        return None

    def add_training_inputs(
        self,
        batch: Batch,
        context: Any,
        images: Array,
        labels: Array,
        rng: Array,
        preprocess: Callable[[Array, Array], Array],
    ) -> Batch:
        """A training minibatch with what a `labelled_minibatches` family adds to it, drawn with
        `rng` from the whole training split (`images`, `labels`); `preprocess(raw, key)` makes
        model inputs of raw images as the minibatch's were made."""
        return batch

    def init_state(self, rng: Array, batch: Batch, tx: optax.GradientTransformation) -> Any:
        return optim.TrainState.create(self.init(rng, batch), tx)

    def start_at_data_mean(self, state: Any, x_mean: np.ndarray) -> Any:
        """`state` with the decoder's output bias at the likelihood parameters of the training
        inputs' mean image `x_mean` (H, W, C), for `config.network.output_bias='data_mean'`: the
        decoder then starts at the data's per-pixel marginal, as in Burda et al.'s code."""
        decoder = state.params["decoder"]
        out = decoder["params"]["out"]
        bias = self.likelihood.params_at_mean(np.asarray(x_mean)).reshape(out["bias"].shape)
        out = {**out, "bias": jnp.asarray(bias, out["bias"].dtype)}
        decoder = {**decoder, "params": {**decoder["params"], "out": out}}
        return state.replace(params={**state.params, "decoder": decoder})

    def train_step(self, state: Any, batch: Batch, rng: Array, tx: optax.GradientTransformation):
        """A `multi_phase` family's update: (new state, batch metrics)."""
        raise NotImplementedError(f"{type(self).__name__} is not multi_phase.")
