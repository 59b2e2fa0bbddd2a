"""Semi-supervised M2 (Kingma, Rezende, Mohamed & Welling 2014): the label, a partly seen latent.

Generative model p(y) p(z) p(x | y, z), p(y) uniform over K classes, p(z) = N(0, I); inference
q(y | x) (a classifier) and q(z | x, y) (the `cvae` family's encoder and decoder). In nats per
image:

- labelled example: −L(x, y) bound, L(x, y) = −log p(x|y, z) + KL(q(z|x,y) || p(z)) + log K
  (one z sample; `neg_elbo_xy`, a bound on −log p(x, y));
- unlabelled example: U(x) = Σ_y q(y|x) L(x, y) − H(q(y|x)), the sum over the K classes taken
  explicitly (class k draws z with key split(rng, K)[k]); U = recon + KL_z + KL(q(y|x) || p(y)),
  a bound on −log p(x) (`neg_elbo`, with `kl` = KL_z + `kl_y`);
- classification: the paper adds α·E_labelled[−log q(y|x)] to the bound summed over the N
  training examples, α = 0.1·N. Per example that is `config.model.alpha_over_n` (0.1) times the
  mean labelled cross-entropy; configs/m2.py uses 50, since 0.1 leaves q(y|x) near uniform on
  MNIST's pixels with 100 labels (see there).

Training (`loss`) with `config.model.num_labels` = N_l > 0 labels: each step sees an unlabelled
minibatch `x` (its labels are ignored) and `labelled_batch_size` labelled examples from the fixed
class-balanced subset (`x_labelled`, `y_labelled`, and `labelled_fraction` f = N_l / N, drawn afresh
every step by `add_training_inputs`, since a subset of 100 would hardly ever appear in a
minibatch), and minimises the per-example objective
    (1 − f)·mean U(x) + f·mean L(x_l, y_l) + α/N·mean(−log q(y_l | x_l)).
With num_labels 0 or −1 every label is known: mean L(x, y) + α/N·mean(−log q(y|x)), the lecture's
CVAE with a classifier. Evaluation reports the test classification error of argmax q(y|x) in %.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import data, networks
from autoencoders.data import DataSpec
from autoencoders.models import base, cvae

Array = jax.Array


def classification_terms(log_q_y: Array, labels: Array) -> dict[str, Array]:
    """Per-example −log q(y|x) (nats) and the error of argmax q(y|x) (%, 0 or 100), (B,)."""
    return {
        "class_xent": -jnp.take_along_axis(log_q_y, labels[:, None], axis=-1)[:, 0],
        "class_error": 100.0 * (jnp.argmax(log_q_y, axis=-1) != labels),
    }


class M2(cvae.ConditionalVAE):
    """`m2`: q(y|x), q(z|x,y), p(x|y,z); semi-supervised when `config.model.num_labels` > 0."""

    @classmethod
    def check_config(cls, config) -> None:
        cls.require_model_fields(config, "num_labels", "labelled_batch_size", "alpha_over_n")
        super().check_config(config)
        model_cfg = config.model
        if model_cfg.beta != 1:
            raise ValueError(
                f"config.model.beta={model_cfg.beta}: the m2 family trains the unweighted bound, "
                "so beta must be 1."
            )
        if model_cfg.alpha_over_n < 0:
            raise ValueError(f"config.model.alpha_over_n={model_cfg.alpha_over_n}: must be >= 0.")
        if model_cfg.num_labels < -1:
            raise ValueError(
                f"config.model.num_labels={model_cfg.num_labels}: must be a number of labelled "
                "examples (e.g. 100, 600, 1000, 3000), or 0 / -1 for every label."
            )
        if model_cfg.num_labels > 0:
            num_classes = data.describe(config.data).num_classes
            if model_cfg.num_labels % num_classes:
                raise ValueError(
                    f"config.model.num_labels={model_cfg.num_labels}: the labelled subset is "
                    f"balanced, so it must be a multiple of the {num_classes} classes."
                )
            if model_cfg.labelled_batch_size <= 0:
                raise ValueError(
                    f"config.model.labelled_batch_size={model_cfg.labelled_batch_size}: must be "
                    "> 0 when config.model.num_labels > 0."
                )

    def __init__(self, config, spec: DataSpec):
        super().__init__(config, spec)
        self.classifier = networks.make_encoder(config.network, spec.num_classes)
        self.alpha_over_n = float(config.model.alpha_over_n)
        self.num_labelled = max(0, int(config.model.num_labels))
        # Semi-supervised (some labels): each step adds a labelled minibatch of this size.
        self.labelled_minibatches = self.num_labelled > 0
        self.labelled_batch_size = min(int(config.model.labelled_batch_size), self.num_labelled)
        self.log_num_classes = math.log(spec.num_classes)  # −log p(y), p(y) uniform

    @property
    def bound_xy_name(self) -> str:
        return f"{self.bound_name}_xy"

    @property
    def progress_terms(self) -> tuple[str, ...]:
        return (*super().progress_terms, "class_error")

    def term_units(self) -> dict[str, str]:
        units = {
            **super().term_units(),
            "loss": "nats per image: the M2 objective of the module docstring",
            self.bound_name: self.units.description + " (−log p(x) bound U(x), one z sample)",
            "kl": "nats per image: KL(q(z|x,y) || p(z)) + KL(q(y|x) || p(y))",
            self.bound_xy_name: self.units.description + " (−log p(x, y) bound, one z sample)",
            "kl_y": "nats per image: KL(q(y|x) || p(y))",
            "class_error": "% of images misclassified by argmax q(y|x)",
            "class_xent": "nats per image: −log q(y|x) at the true label",
        }
        labelled = {f"labelled_{k}": f"{v}; on the labelled minibatch" for k, v in units.items()}
        return {**units, **labelled}

    # --- labelled minibatches -------------------------------------------------------------------

    def training_context(self, train_labels: np.ndarray, seed: int) -> np.ndarray | None:
        """The indices of the training examples whose labels are kept: a class-balanced subset
        of `num_labelled`, fixed by `seed` (config.data.split_seed)."""
        if not self.labelled_minibatches:
            return None
        return data.labelled_subset(train_labels, self.num_labelled, self.num_classes, seed)

    def add_training_inputs(
        self,
        batch: base.Batch,
        context: Any,
        images: Array,
        labels: Array,
        rng: Array,
        preprocess: Callable[[Array, Array], Array],
    ) -> base.Batch:
        """`labelled_batch_size` labelled examples drawn afresh from the subset (`context`), as
        x_labelled / y_labelled, and the subset's share of the training set (a scalar)."""
        if not self.labelled_minibatches:
            return batch
        if context is None:
            raise ValueError("M2 with some labels needs its training_context: the labelled subset.")
        pick_key, data_key = jax.random.split(rng)
        picks = jax.random.choice(
            pick_key, len(context), (self.labelled_batch_size,), replace=False
        )
        idx = jnp.asarray(context)[picks]
        return {
            **batch,
            "x_labelled": preprocess(images[idx], data_key),
            "y_labelled": labels[idx],
            "labelled_fraction": jnp.float32(len(context) / images.shape[0]),
        }

    # --- networks -------------------------------------------------------------------------------

    def init(self, rng: Array, batch: base.Batch) -> base.Params:
        vae_rng, classifier_rng = jax.random.split(rng)
        params = super().init(vae_rng, batch)
        params["classifier"] = self.classifier.init(classifier_rng, batch["x"])
        return params

    def log_q_y(self, params: base.Params, x: Array) -> Array:
        """log q(y | x), (B, K)."""
        return jax.nn.log_softmax(self.classifier.apply(params["classifier"], x))

    def predict(self, params: base.Params, x: Array) -> Array:
        """The classifier's label, argmax_y q(y | x), (B,)."""
        return jnp.argmax(self.log_q_y(params, x), axis=-1)

    def encode(self, params, x, cond=None):
        """Mean of q(z | x, y), y the given one-hot `cond` or else the predicted label."""
        if cond is None:
            cond = self.one_hot(self.predict(params, x))
        return super().encode(params, x, cond)

    # --- the two bounds -------------------------------------------------------------------------

    def labelled_terms(self, params: base.Params, x: Array, y: Array, rng: Array) -> dict:
        """Per-example (B,) terms of labelled data: L(x, y), its parts, the classifier's loss."""
        vae_terms = super().loss(params, {"x": x, "y": y}, rng)[1]
        log_q_y = self.log_q_y(params, x)
        return {
            self.bound_xy_name: vae_terms[self.bound_name] + self.log_num_classes,
            self.recon_name: vae_terms[self.recon_name],
            "kl": vae_terms["kl"],
            "sq_err": vae_terms["sq_err"],
            **classification_terms(log_q_y, y),
        }

    def per_class_terms(self, params: base.Params, x: Array, rng: Array) -> dict[str, Array]:
        """The `cvae` terms of x under every label: each (K, B); label k uses split(rng, K)[k]."""

        def with_label(k, key):
            labels = jnp.full((x.shape[0],), k, jnp.int32)
            return super(M2, self).loss(params, {"x": x, "y": labels}, key)[1]

        classes = jnp.arange(self.num_classes)
        return jax.vmap(with_label)(classes, jax.random.split(rng, self.num_classes))

    def unlabelled_bound(self, log_q_y: Array, per_class: dict[str, Array]) -> dict[str, Array]:
        """U(x) = Σ_y q(y|x) L(x, y) − H(q(y|x)) and its parts, (B,), from `per_class_terms`."""
        q_y = jnp.exp(log_q_y).T  # (K, B)
        expected = {k: jnp.sum(q_y * v, axis=0) for k, v in per_class.items()}
        kl_y = jnp.sum(q_y * log_q_y.T, axis=0) + self.log_num_classes  # KL(q(y|x) || uniform)
        return {
            self.bound_name: expected[self.recon_name] + expected["kl"] + kl_y,
            self.recon_name: expected[self.recon_name],
            "kl": expected["kl"] + kl_y,
            "kl_y": kl_y,
            "sq_err": expected["sq_err"],
        }

    def unlabelled_terms(self, params: base.Params, x: Array, rng: Array) -> dict[str, Array]:
        """Per-example (B,) U(x) and its parts; the labels, if any, are not used."""
        return self.unlabelled_bound(self.log_q_y(params, x), self.per_class_terms(params, x, rng))

    # --- objective ------------------------------------------------------------------------------

    def eval_terms(self, params, batch, rng):
        """Evaluation on labelled data: U(x), L(x, y), −log q(y|x), the error (%), and as `loss`
        the every-label objective L(x, y) + α/N·(−log q(y|x))."""
        x, y = batch["x"], batch["y"]
        log_q_y = self.log_q_y(params, x)
        per_class = self.per_class_terms(params, x, rng)
        # L(x, y) at the true label: the k = y entry of the per-class bounds.
        bound_xy = jnp.take_along_axis(per_class[self.bound_name], y[None], axis=0)[0]
        bound_xy = bound_xy + self.log_num_classes
        classification = classification_terms(log_q_y, y)
        return {
            **self.unlabelled_bound(log_q_y, per_class),
            self.bound_xy_name: bound_xy,
            **classification,
            "loss": bound_xy + self.alpha_over_n * classification["class_xent"],
        }

    def loss(self, params, batch, rng):
        """The per-example objective of the module docstring, averaged; returns (loss, metrics)."""
        if not self.labelled_minibatches:  # every label known
            labelled = self.labelled_terms(params, batch["x"], batch["y"], rng)
            metrics = self.training_metrics(labelled)
            metrics["loss"] = (
                metrics[self.bound_xy_name] + self.alpha_over_n * metrics["class_xent"]
            )
            return metrics["loss"], metrics
        unlabelled_rng, labelled_rng = jax.random.split(rng)
        unlabelled = self.unlabelled_terms(params, batch["x"], unlabelled_rng)
        labelled = self.labelled_terms(
            params, batch["x_labelled"], batch["y_labelled"], labelled_rng
        )
        metrics = self.training_metrics(unlabelled)
        metrics.update({f"labelled_{k}": v for k, v in self.training_metrics(labelled).items()})
        fraction = batch["labelled_fraction"]
        metrics["loss"] = (
            (1 - fraction) * metrics[self.bound_name]
            + fraction * metrics[f"labelled_{self.bound_xy_name}"]
            + self.alpha_over_n * metrics["labelled_class_xent"]
        )
        return metrics["loss"], metrics
