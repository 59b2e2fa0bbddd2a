"""Contractive autoencoder (Rifai et al. 2011): AE loss + λ ‖∂h(x)/∂x‖²_F.

h is the encoder's code (any encoder, MLP or conv); λ is `config.model.contractive_weight`. The
squared Frobenius norm of the per-example Jacobian J = ∂h(x)/∂x (code_size × input_size) is
computed in one of three ways (`config.model.jacobian`):

- `exact`: by JAX autodiff, Σ_i ‖e_iᵀ J‖² over the rows (reverse mode, one VJP per code unit) or
  Σ_j ‖J e_j‖² over the columns (forward mode, one JVP per pixel), whichever needs fewer passes
  (`jacobian_mode`); any encoder.
- `projection`: the unbiased estimate ‖J‖²_F = E_v ‖vᵀJ‖² (or E_u ‖Ju‖²), v ~ N(0, I), averaged over
  `config.model.num_projections` fresh Gaussian probes per example and step: that many passes
  instead of min(code_size, input_size), for large inputs or codes.
- `closed_form`: Rifai et al.'s own formula for a one-layer encoder h = s(W x + b) with an
  elementwise s (`config.network.hidden=()`, `config.model.code_activation`): J = diag(s'(a)) W,
  so ‖J‖²_F = Σ_j s'(a_j)² ‖W_j‖², exact for the cost of one product (the papers' 1,000-unit code
  from 784 pixels would otherwise need 784 JVPs).

Metrics: `jacobian_sq_norm` is the unweighted ‖J‖²_F per image (with `projection`, its unbiased
estimate, in evaluation too); `loss` = reconstruction + λ·it.

Caveat: with an unconstrained linear code and an untied decoder, the penalty can partly be met by
shrinking the code and growing the decoder's first layer. Rifai et al. tie the decoder to the
encoder's weights, which rules that out: `config.network.tied=True` does the same here
(`networks.TiedDecoder`). Untied, compare runs at equal reconstruction error.

`ContractivePenalty` is the shared "AE + λ·penalty(h, x)" base; the stochastic contractive AE
(`models/scae.py`) is the same with a different penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders.models import ae, base

Array = jax.Array
JACOBIAN_ESTIMATES = ("exact", "projection", "closed_form")
JACOBIAN_MODES = ("reverse", "forward")


def jacobian_mode(input_size: int, code_size: int) -> str:
    """'reverse' when the code is smaller than the input, else 'forward'.

    J has code_size rows and input_size columns. A reverse-mode pass (VJP) yields one row vᵀJ, a
    forward-mode pass (JVP) one column Ju, each for about the cost of one network evaluation; the
    exact norm needs every row or every column, so the smaller dimension decides.
    """
    return "reverse" if code_size < input_size else "forward"


def _sum_sq_probe_products(
    code_fn: Callable[[Array], Array], x: Array, probes: Array, mode: str, probes_per_example: bool
) -> Array:
    """Per example b: Σ_p ‖probe_pᵀ J_b‖² (reverse) or Σ_p ‖J_b probe_p‖² (forward); shape (B,).

    `probes` has shape (P, code_size) in reverse mode and (P, *x.shape[1:]) in forward mode, with
    a leading batch axis (B, P, ...) if `probes_per_example`.
    """

    def one_example(x_b: Array, probes_b: Array) -> Array:
        # The code of a single example as a function of that example alone.
        def code_of(x_single: Array) -> Array:
            return code_fn(x_single[None])[0]

        if mode == "reverse":
            _, vjp = jax.vjp(code_of, x_b)
            products = jax.vmap(lambda v: vjp(v)[0])(probes_b)
        else:
            products = jax.vmap(lambda u: jax.jvp(code_of, (x_b,), (u,))[1])(probes_b)
        return jnp.sum(products**2)

    return jax.vmap(one_example, in_axes=(0, 0 if probes_per_example else None))(x, probes)


def _sizes(code_fn: Callable[[Array], Array], x: Array) -> tuple[int, int]:
    code_size = int(jax.eval_shape(code_fn, x).shape[-1])
    return int(np.prod(x.shape[1:])), code_size


def jacobian_sq_norm(code_fn: Callable[[Array], Array], x: Array, mode: str | None = None) -> Array:
    """‖∂code_fn(x)_b / ∂x_b‖²_F for each example b, exactly; shape (B,).

    Args:
      code_fn: maps a batch (B, ...) to codes (B, code_size), each example's code depending on that
        example only (true of the encoders here: no batch statistics).
      x: the inputs (B, ...).
      mode: 'reverse' (code_size VJPs), 'forward' (input_size JVPs), or None for `jacobian_mode`.
    """
    input_size, code_size = _sizes(code_fn, x)
    mode = mode or jacobian_mode(input_size, code_size)
    if mode == "reverse":
        probes = jnp.eye(code_size, dtype=x.dtype)  # the rows of J
    else:
        probes = jnp.eye(input_size, dtype=x.dtype).reshape(input_size, *x.shape[1:])  # columns
    return _sum_sq_probe_products(code_fn, x, probes, mode, probes_per_example=False)


def jacobian_sq_norm_projection(
    code_fn: Callable[[Array], Array],
    x: Array,
    rng: Array,
    num_projections: int,
    mode: str | None = None,
) -> Array:
    """An unbiased estimate of `jacobian_sq_norm`: mean over probes of ‖vᵀJ‖² (or ‖Ju‖²); (B,).

    E_v[‖vᵀJ‖²] = E_v[vᵀ J Jᵀ v] = tr(J Jᵀ) = ‖J‖²_F for v ~ N(0, I); likewise E_u‖Ju‖². Each
    example draws its own `num_projections` probes, so the cost is that many VJPs (or JVPs).
    """
    input_size, code_size = _sizes(code_fn, x)
    mode = mode or jacobian_mode(input_size, code_size)
    probe_shape = (code_size,) if mode == "reverse" else x.shape[1:]
    probes = jax.random.normal(rng, (x.shape[0], num_projections, *probe_shape), x.dtype)
    total = _sum_sq_probe_products(code_fn, x, probes, mode, probes_per_example=True)
    return total / num_projections


def one_layer_jacobian_sq_norm(
    kernel: Array, bias: Array, x: Array, activation: Callable[[Array], Array]
) -> Array:
    """‖∂h/∂x‖²_F for each example of h = activation(x W + b), exactly, in closed form; (B,).

    The Jacobian's row j is activation'(a_j) times W's column j (a = x W + b, activation
    elementwise), so the norm is Σ_j activation'(a_j)² Σ_i W_ij². The slopes come from one JVP of
    the activation with a tangent of ones, so any elementwise activation works.
    """
    pre = x.reshape(x.shape[0], -1) @ kernel + bias
    slope = jax.jvp(activation, (pre,), (jnp.ones_like(pre),))[1]
    return slope**2 @ jnp.sum(kernel**2, axis=0)


class ContractivePenalty(ae.Autoencoder):
    """AE + λ·penalty(x), λ = `config.model.contractive_weight`; subclasses define `penalty`."""

    penalty_name = "penalty"
    penalty_unit = "per image"
    penalty_fields: tuple[str, ...] = ()

    def term_units(self) -> dict[str, str]:
        return {**super().term_units(), self.penalty_name: self.penalty_unit}

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        cls.require_model_fields(config, "contractive_weight", *cls.penalty_fields)
        if not config.model.contractive_weight >= 0:
            raise ValueError(
                f"config.model.contractive_weight={config.model.contractive_weight}: must be >= 0."
            )

    def penalty(self, params, x: Array, rng: Array) -> Array:
        """The unweighted penalty per example (B,)."""
        raise NotImplementedError

    def loss(self, params, batch: base.Batch, rng: Array) -> base.Objective:
        terms = super().loss(params, batch, rng)[1]
        penalty = self.penalty(params, self.encoder_input(batch), rng)
        weight = self.config.model.contractive_weight
        loss = terms["loss"] + weight * penalty
        return base.mean_loss({**terms, "loss": loss, self.penalty_name: penalty})


class ContractiveAE(ContractivePenalty):
    """`cae`: penalty ‖∂h(x)/∂x‖²_F, exact, by random projections or in closed form for one layer
    (`config.model.jacobian`)."""

    penalty_name = "jacobian_sq_norm"
    penalty_unit = "‖∂h(x)/∂x‖²_F per image (code units² per unit of pixel value²)"
    penalty_fields = ("jacobian", "num_projections")

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.model.jacobian not in JACOBIAN_ESTIMATES:
            raise ValueError(
                f"config.model.jacobian={config.model.jacobian!r}: must be one of "
                f"{', '.join(JACOBIAN_ESTIMATES)}."
            )
        if config.model.jacobian == "projection" and config.model.num_projections < 1:
            raise ValueError(
                f"config.model.num_projections={config.model.num_projections}: must be >= 1 "
                "with config.model.jacobian='projection'."
            )
        hidden = tuple(config.network.get("hidden", ()))
        if config.model.jacobian == "closed_form" and (config.network.kind != "mlp" or hidden):
            raise ValueError(
                "config.model.jacobian='closed_form' needs a one-layer encoder, "
                "config.network.kind='mlp' and config.network.hidden=() (got "
                f"kind={config.network.kind!r}, hidden={hidden}); use 'exact' or 'projection'."
            )

    def penalty(self, params, x: Array, rng: Array) -> Array:
        def code_fn(inputs: Array) -> Array:
            return self.encode(params, inputs)

        if self.config.model.jacobian == "exact":
            return jacobian_sq_norm(code_fn, x)
        if self.config.model.jacobian == "closed_form":
            dense = params["encoder"]["params"]["out"]
            activation = ae.CODE_ACTIVATIONS[ae.code_activation(self.config)]
            return one_layer_jacobian_sq_norm(dense["kernel"], dense["bias"], x, activation)
        return jacobian_sq_norm_projection(code_fn, x, rng, self.config.model.num_projections)
