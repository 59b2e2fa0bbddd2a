"""Convolutions lowered as matrix products (autoencoders/conv.py) equal XLA's convolutions."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from autoencoders import conv, epoch, models, networks
from tests.helpers import tiny_config, tiny_conv_vae

NHWC = ("NHWC", "HWIO", "NHWC")

# (height, width, in channels, out channels, stride): the encoders' stride-2 layers (odd sizes
# too), the decoders' stride-1 ones to more channels (patches, or Winograd's: whole 4×4 tiles
# and overhanging ones) and to fewer ('out': taps).
SHAPES = [
    (8, 8, 1, 4, 2),
    (7, 5, 3, 6, 2),
    (4, 4, 8, 16, 1),
    (7, 10, 4, 8, 1),
    (6, 6, 8, 3, 1),
    (5, 7, 6, 1, 1),
]
# Winograd's F(4×4, 3×3) rounds ~10× more than a direct sum (`conv.py`'s docstring).
TOLERANCE = {"matmul": 1e-5, "winograd": 1e-4, "xla": 1e-5}


def _assert_close(actual, expected, tolerance: float = 1e-5) -> None:
    scale = float(np.max(np.abs(expected))) or 1.0
    np.testing.assert_allclose(
        np.asarray(actual), np.asarray(expected), rtol=tolerance, atol=tolerance * scale
    )


def _value_and_grads(fn, x, kernel):
    def loss(x, kernel):
        y = fn(x, kernel)
        return jnp.sum(jnp.sin(y)), y

    (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, kernel)
    return y, grads


@pytest.mark.parametrize("height, width, channels, features, stride", SHAPES)
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1))])
@pytest.mark.parametrize("lowering", conv.MATMUL_LOWERINGS)
def test_matmul_lowering_equals_xla_convolution(
    height, width, channels, features, stride, padding, lowering
):
    kx, kk = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, height, width, channels))
    kernel = jax.random.normal(kk, (3, 3, channels, features)) / 3.0
    strides = (stride, stride)
    expected = jax.jit(
        lambda x, k: _value_and_grads(
            lambda x, k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=NHWC),
            x,
            k,
        )
    )(x, kernel)
    winograd = lowering == "winograd"
    actual = jax.jit(
        lambda x, k: _value_and_grads(
            lambda x, k: conv.matmul_conv(x, k, strides, padding, winograd=winograd), x, k
        )
    )(x, kernel)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.shape == e.shape
        _assert_close(a, e, TOLERANCE[lowering])


def _winograd_products(fn, *args) -> int:
    """How many of `fn`'s matrix products are Winograd F(4×4, 3×3)'s: batched over 36 positions."""
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    return sum(
        e.primitive.name == "dot_general"
        and e.params["dimension_numbers"][1][0] == (0,)
        and e.invars[0].aval.shape[0] == 36
        for e in jaxpr.eqns
    )


@pytest.mark.parametrize(
    "shape, stride, expected",
    [
        ((2, 7, 10, 4), 1, 1),  # stride 1, more channels out (8 > 4): Winograd's
        ((2, 8, 8, 4), 2, 0),  # stride 2: the patches
        ((2, 8, 8, 16), 1, 0),  # fewer channels out (8 < 16): the taps
    ],
)
def test_winograd_computes_the_stride_1_convolutions_to_more_channels(shape, stride, expected):
    kernel = jnp.ones((3, 3, shape[-1], 8))
    for winograd in (True, False):
        count = _winograd_products(
            lambda x: conv.matmul_conv(x, kernel, (stride, stride), "SAME", winograd=winograd),  # noqa: B023
            jnp.ones(shape),
        )
        assert count == (expected if winograd else 0), winograd


def test_other_convolutions_go_to_xla(monkeypatch):
    """Dilated, grouped or NCHW convolutions are XLA's, whatever the lowering."""
    monkeypatch.setenv(conv.LOWERING_ENV, "matmul")
    x = jnp.ones((1, 6, 6, 4))
    kernel = jnp.ones((3, 3, 2, 4))
    grouped = conv.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=lax.conv_dimension_numbers(
            x.shape, kernel.shape, NHWC
        ), feature_group_count=2,
    )  # fmt: skip
    expected = lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=2
    )
    _assert_close(grouped, expected)
    jaxpr = jax.make_jaxpr(
        lambda x: conv.conv_general_dilated(
            x, jnp.ones((3, 3, 4, 4)), (1, 1), "SAME", rhs_dilation=(2, 2), dimension_numbers=NHWC
        )
    )(x)
    assert "conv_general_dilated" in str(jaxpr)


def test_the_lowering_is_chosen_per_platform_and_can_be_overridden(monkeypatch):
    monkeypatch.delenv(conv.LOWERING_ENV, raising=False)
    assert conv.lowering("cpu") == "winograd"
    assert conv.lowering("gpu") == conv.lowering("tpu") == "xla"
    assert conv.lowering() == ("winograd" if jax.default_backend() == "cpu" else "xla")
    monkeypatch.setenv(conv.LOWERING_ENV, "xla")
    assert conv.lowering("cpu") == "xla"
    monkeypatch.setenv(conv.LOWERING_ENV, "matmul")
    assert conv.lowering("gpu") == "matmul"
    monkeypatch.setenv(conv.LOWERING_ENV, "fast")
    with pytest.raises(ValueError, match=conv.LOWERING_ENV):
        conv.lowering()


@pytest.mark.parametrize(
    "lowering, has_conv, winograd_upsamples",
    [("winograd", False, 2), ("matmul", False, 0), ("xla", True, 0)],
)
def test_networks_use_the_chosen_lowering(monkeypatch, lowering, has_conv, winograd_upsamples):
    monkeypatch.setenv(conv.LOWERING_ENV, lowering)
    encoder = networks.Encoder(out_dim=4, kind="conv", hidden=(8,), conv_features=(4, 8))
    decoder = networks.Decoder((8, 8, 1), 1, kind="conv", hidden=(8,), conv_features=(4, 8))
    for network, x in ((encoder, jnp.zeros((2, 8, 8, 1))), (decoder, jnp.zeros((2, 3)))):
        params = network.init(jax.random.key(0), x)
        jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: network.apply(p, x).sum()))(params))  # noqa: B023
        assert ("conv_general_dilated" in jaxpr) == has_conv, type(network).__name__
    # The decoder's two sub-pixel layers forward (the encoder's are stride 2: none).
    assert _winograd_products(decoder.apply, params, x) == winograd_upsamples


def test_epoch_loop_auto_scans_unless_xla_convolutions_on_cpu(monkeypatch):
    config = tiny_config("vae", **{"network.kind": "conv", "network.conv_features": (4,)})
    monkeypatch.delenv(conv.LOWERING_ENV, raising=False)
    assert epoch.epoch_loop(config) == "scan"
    monkeypatch.setenv(conv.LOWERING_ENV, "xla")
    cpu = jax.default_backend() == "cpu"
    assert epoch.epoch_loop(config) == ("steps" if cpu else "scan")


def test_conv_vae_loss_and_gradients_equal_under_all_lowerings(monkeypatch):
    config, spec, batch = tiny_conv_vae(4)
    results = {}
    for lowering in ("xla", *conv.MATMUL_LOWERINGS):
        monkeypatch.setenv(conv.LOWERING_ENV, lowering)
        model = models.make(config, spec)
        params = model.init(jax.random.key(0), batch)
        grad_fn = jax.jit(jax.grad(model.loss, has_aux=True))
        results[lowering] = (params, *grad_fn(params, batch, jax.random.key(2)))
    for lowering in conv.MATMUL_LOWERINGS:
        for a, e in zip(
            jax.tree.leaves(results[lowering]), jax.tree.leaves(results["xla"]), strict=True
        ):
            _assert_close(a, e, TOLERANCE[lowering])


@pytest.mark.parametrize("lowering", ["winograd", "matmul", "xla"])
def test_upsample_equals_a_biased_conv_then_depth_to_space(monkeypatch, lowering):
    """Upsample2x adds its bias after the depth-to-space, for speed: the same parameters (an
    nn.Conv's) and the same function as the bias added by the convolution."""
    monkeypatch.setenv(conv.LOWERING_ENV, lowering)
    h = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
    upsample = networks.Upsample2x(features=6)
    params = upsample.init(jax.random.key(1), h)
    reference = nn.Conv(24, (3, 3))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, reference.init(jax.random.key(1), h)
    )  # same names and shapes: checkpoints of either load into the other
    params = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)

    def expected_fn(params, h):
        out = reference.apply(params, h).reshape(2, 3, 4, 2, 2, 6).transpose(0, 1, 3, 2, 4, 5)
        return out.reshape(2, 6, 8, 6)

    def value_and_grads(fn):
        loss = lambda p, h: jnp.sum(jnp.sin(fn(p, h)))  # noqa: E731
        return fn(params, h), jax.grad(loss, argnums=(0, 1))(params, h)

    actual, expected = value_and_grads(upsample.apply), value_and_grads(expected_fn)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        _assert_close(a, e, TOLERANCE[lowering])
