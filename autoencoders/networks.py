"""Encoder and decoder networks (Flax modules), sized from `config.network`.

An encoder maps images (B, H, W, C) to `out_dim` features (the latent code, or the parameters of
q(z|x)); a decoder maps latents (B, d) to per-pixel likelihood parameters (B, H, W, C, P), P set by
the likelihood. Both accept an optional conditioning vector (e.g. a one-hot label) that enters as
if concatenated to the flattened input, so conditional families reuse the same networks.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from autoencoders import conv

ACTIVATIONS = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "softplus": nn.softplus,
    "swish": nn.swish,
    "leaky_relu": nn.leaky_relu,
}
KINDS = ("mlp", "conv")
# The decoder's output bias at initialisation: zeros (Flax's default), or the likelihood
# parameters of the training inputs' mean image, so that the decoder starts at the data's
# per-pixel marginal (Burda et al. 2016's code; `models.base.Model.start_at_data_mean`).
OUTPUT_BIASES = ("zeros", "data_mean")
NHWC = ("NHWC", "HWIO", "NHWC")  # flax nn.Conv's layouts


def _conv(features: int, strides: int = 1, *, name: str) -> nn.Conv:
    """A 3×3 'SAME' convolution. Its lowering is `conv.conv_general_dilated`'s: one matrix
    product per convolution on CPU, where XLA's own convolutions are about twice as slow for these
    sizes (docs/benchmarks.md), and XLA's convolution on GPU and TPU; the parameters are
    nn.Conv's either way."""
    return nn.Conv(
        features,
        (3, 3),
        strides=(strides, strides),
        conv_general_dilated=conv.conv_general_dilated,
        name=name,
    )


class ConditionedDense(nn.Module):
    """nn.Dense of concatenate([h, cond]), computed as h @ K[:d] + cond @ K[d:] + b: the same
    parameters and values, but where one h meets many conds (M2 sums each image's bound over all
    labels, vmapped) h @ K[:d] is computed once rather than once per label."""

    features: int

    @nn.compact
    def __call__(self, h: jax.Array, cond: jax.Array) -> jax.Array:
        d = h.shape[-1]
        shape = (d + cond.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)  # nn.Dense's init
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return h @ kernel[:d] + cond.astype(h.dtype) @ kernel[d:] + bias


class MLP(nn.Module):
    """Dense layers with `activation` after each (after the last too if `activate_final`); an
    optional `cond` enters the first layer as if concatenated to h (`ConditionedDense`), and is
    concatenated to the output of an MLP with no layers."""

    features: Sequence[int]
    activation: str = "relu"
    activate_final: bool = True

    @nn.compact
    def __call__(self, h: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        if cond is not None and not self.features:
            return jnp.concatenate([h, cond.astype(h.dtype)], axis=-1)
        for i, width in enumerate(self.features):
            if i == 0 and cond is not None:
                h = ConditionedDense(width, name="dense_0")(h, cond)
            else:
                h = nn.Dense(width, name=f"dense_{i}")(h)
            if self.activate_final or i < len(self.features) - 1:
                h = act(h)
        return h


class Encoder(nn.Module):
    """x (B, H, W, C) [+ cond (B, k)] -> (B, out_dim)."""

    out_dim: int
    kind: str = "mlp"
    hidden: Sequence[int] = (500,)
    conv_features: Sequence[int] = (32, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = x
        if self.kind == "conv":
            for i, feats in enumerate(self.conv_features):
                h = act(_conv(feats, 2, name=f"conv_{i}")(h))
        h = MLP(tuple(self.hidden), self.activation, name="mlp")(h.reshape(h.shape[0], -1), cond)
        return nn.Dense(self.out_dim, name="out")(h)


class Upsample2x(nn.Module):
    """Learned 2× upsampling by sub-pixel convolution: a 3×3 conv to 4× the features, then
    depth-to-space (Shi et al. 2016). Chosen over a stride-2 transposed conv because XLA:CPU
    computes the transposed conv's weight gradient several times slower (see benchmarks/).

    The parameters are those of an nn.Conv to 4× the features (same names, shapes and
    initialisers), and so is the function; only the bias is added after the depth-to-space, one
    per (row parity, column parity, feature). The sum is the same, but the bias gradient becomes a
    plain reduction of the output gradient: added before, XLA:CPU fuses that reduction with the
    depth-to-space's transpose into a slow reduce-window (~7 ms of the 28×28 conv VAE's ~155 ms
    step; its steps were 2-3% faster after the move, in alternating runs).
    """

    features: int

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        shape = (3, 3, h.shape[-1], 4 * self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        bias = self.param("bias", nn.initializers.zeros_init(), (4 * self.features,))
        h = conv.conv_general_dilated(h, kernel, (1, 1), "SAME", dimension_numbers=NHWC)
        batch, height, width, _ = h.shape
        h = h.reshape(batch, height, width, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        h = h + bias.reshape(2, 1, 2, self.features)  # over (row parity, width, column parity, F)
        return h.reshape(batch, 2 * height, 2 * width, self.features)


class Decoder(nn.Module):
    """z (B, d) [+ cond (B, k)] -> likelihood parameters (B, H, W, C, num_params)."""

    image_shape: tuple[int, int, int]
    num_params: int
    kind: str = "mlp"
    hidden: Sequence[int] = (500,)
    conv_features: Sequence[int] = (32, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        height, width, channels = self.image_shape
        h = MLP(tuple(self.hidden), self.activation, name="mlp")(z, cond)
        if self.kind == "mlp":
            h = nn.Dense(height * width * channels * self.num_params, name="out")(h)
        else:
            factor = 2 ** len(self.conv_features)
            h0, w0, f0 = height // factor, width // factor, self.conv_features[-1]
            h = act(nn.Dense(h0 * w0 * f0, name="project")(h)).reshape(-1, h0, w0, f0)
            for i, feats in enumerate(reversed(self.conv_features)):
                h = act(Upsample2x(feats, name=f"upsample_{i}")(h))
            h = _conv(channels * self.num_params, name="out")(h)
        return h.reshape(-1, height, width, channels, self.num_params)


class TiedDecoder(nn.Module):
    """An MLP encoder's mirror with its weights: z (B, d) -> (B, H, W, C, 1).

    Layer i applies the transpose of the encoder's kernels taken in reverse order (tied weights,
    as in Vincent et al. 2008 and Rifai et al. 2011), so the decoder owns only its biases; the
    kernels are passed in at each call (`encoder_kernels(params['encoder'])`), and their gradient
    sums both uses. One output per pixel: likelihoods with more (a learned σ) cannot be tied.
    """

    image_shape: tuple[int, int, int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, z: jax.Array, kernels: Sequence[jax.Array]) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = z
        mirrored = list(reversed(kernels))
        for i, kernel in enumerate(mirrored):
            bias = self.param(f"bias_{i}", nn.initializers.zeros_init(), (kernel.shape[0],))
            h = h @ kernel.T + bias
            if i < len(mirrored) - 1:
                h = act(h)
        return h.reshape(-1, *self.image_shape, 1)


def encoder_kernels(encoder_params: dict) -> list[jax.Array]:
    """The dense kernels of an MLP `Encoder`, input layer first (what a `TiedDecoder` mirrors)."""
    params = encoder_params["params"]
    mlp = params.get("mlp", {})
    return [mlp[f"dense_{i}"]["kernel"] for i in range(len(mlp))] + [params["out"]["kernel"]]


def check_config(network_cfg, image_shape: Sequence[int]) -> None:
    """Early, readable errors for `config.network`."""
    if network_cfg.kind not in KINDS:
        raise ValueError(
            f"config.network.kind={network_cfg.kind!r}: must be one of {', '.join(KINDS)}."
        )
    if network_cfg.activation not in ACTIVATIONS:
        raise ValueError(
            f"config.network.activation={network_cfg.activation!r}: must be one of "
            f"{', '.join(ACTIVATIONS)}."
        )
    if any(int(w) <= 0 for w in network_cfg.hidden):
        raise ValueError(f"config.network.hidden={tuple(network_cfg.hidden)}: widths must be > 0.")
    output_bias = network_cfg.get("output_bias", "zeros")
    if output_bias not in OUTPUT_BIASES:
        raise ValueError(
            f"config.network.output_bias={output_bias!r}: must be one of "
            f"{', '.join(OUTPUT_BIASES)}."
        )
    if output_bias == "data_mean" and (network_cfg.kind != "mlp" or network_cfg.get("tied", False)):
        raise ValueError(
            "config.network.output_bias='data_mean' needs kind='mlp' and tied=False (a decoder "
            f"with one output bias per pixel); got kind={network_cfg.kind!r}, "
            f"tied={network_cfg.get('tied', False)}."
        )
    if network_cfg.get("tied", False) and network_cfg.kind != "mlp":
        raise ValueError(
            f"config.network.tied=True needs kind='mlp' (got {network_cfg.kind!r}): only dense "
            "layers have a transpose to reuse."
        )
    if network_cfg.kind == "conv":
        if not network_cfg.conv_features or any(int(f) <= 0 for f in network_cfg.conv_features):
            raise ValueError(
                f"config.network.conv_features={tuple(network_cfg.conv_features)}: need at least "
                "one positive width for kind='conv'."
            )
        if image_shape[0] == 1:
            raise ValueError(
                f"config.network.kind='conv' needs images; the data {tuple(image_shape)} are flat "
                "vectors (one row): use kind='mlp'."
            )
        factor = 2 ** len(network_cfg.conv_features)
        if image_shape[0] % factor or image_shape[1] % factor:
            raise ValueError(
                f"config.network.kind='conv' with {len(network_cfg.conv_features)} stride-2 layers "
                f"needs height and width divisible by {factor}; the data is {tuple(image_shape)}."
            )


def make_encoder(network_cfg, out_dim: int) -> Encoder:
    return Encoder(
        out_dim=out_dim,
        kind=network_cfg.kind,
        hidden=tuple(network_cfg.hidden),
        conv_features=tuple(network_cfg.conv_features),
        activation=network_cfg.activation,
    )


def check_tied(network_cfg, family: str, encoder_outputs_code: bool, num_params: int) -> None:
    """Early errors for `config.network.tied=True` beyond the network's own (`check_config`)."""
    if not network_cfg.get("tied", False):
        return
    if not encoder_outputs_code:
        raise ValueError(
            f"config.network.tied=True: family {family!r} cannot tie its decoder; only families "
            "whose encoder outputs the code itself and whose decoder sees nothing else can "
            "(ae, dae, cae, scae)."
        )
    if num_params != 1:
        raise ValueError(
            f"config.network.tied=True: the likelihood has {num_params} decoder outputs per pixel; "
            "a tied decoder gives one (use bernoulli, continuous_bernoulli or a fixed-σ gaussian)."
        )


def make_decoder(
    network_cfg, image_shape: tuple[int, int, int], num_params: int
) -> Decoder | TiedDecoder:
    if network_cfg.get("tied", False):
        return TiedDecoder(image_shape=image_shape, activation=network_cfg.activation)
    # The decoder mirrors the encoder: hidden layers in reverse order.
    return Decoder(
        image_shape=image_shape,
        num_params=num_params,
        kind=network_cfg.kind,
        hidden=tuple(reversed(tuple(network_cfg.hidden))),
        conv_features=tuple(network_cfg.conv_features),
        activation=network_cfg.activation,
    )
