"""Contractive penalties: exact ‖J‖²_F against a brute-force Jacobian, the projection estimate's
unbiasedness, the stochastic (SCAE) penalty's small-noise limit, and the families' terms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, models, networks, training
from autoencoders.models import cae
from tests.family_helpers import jitter, random_like
from tests.helpers import tiny_config

SHAPE = (4, 4, 1)  # 16 input pixels


def _encoder(kind: str, code_size: int, activation: str = "tanh"):
    """A small encoder with random weights and biases: (B, 4, 4, 1) -> (B, code_size)."""
    net = networks.Encoder(
        out_dim=code_size, kind=kind, hidden=(8,), conv_features=(3,), activation=activation
    )
    params = jitter(net.init(jax.random.key(0), jnp.zeros((1, *SHAPE))), jax.random.key(1))
    return lambda x: net.apply(params, x)


def _inputs(batch: int = 3) -> jax.Array:
    return jax.random.uniform(jax.random.key(2), (batch, *SHAPE))


def _brute_force_jacobians(code_fn, x) -> np.ndarray:
    """Per-example Jacobians (B, code, pixels) from jax.jacobian of the whole batched map."""
    full = jax.jacobian(code_fn)(x)  # (B, code, B, 4, 4, 1): every output against every input
    b = x.shape[0]
    full = np.asarray(full).reshape(b, -1, b, x[0].size)
    return np.stack([full[i, :, i, :] for i in range(b)])


def _finite_difference_jacobians(code_fn, x, eps=1e-3) -> np.ndarray:
    x64 = np.asarray(x, np.float64)
    columns = []
    for j in range(x[0].size):
        step = np.zeros_like(x64).reshape(x.shape[0], -1)
        step[:, j] = eps
        step = step.reshape(x.shape)
        plus = np.asarray(code_fn(jnp.asarray(x64 + step, jnp.float32)), np.float64)
        minus = np.asarray(code_fn(jnp.asarray(x64 - step, jnp.float32)), np.float64)
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=-1)  # (B, code, pixels)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.parametrize("code_size", [3, 40])  # smaller, then larger, than the 16 pixels
@pytest.mark.parametrize("mode", ["reverse", "forward", None])
def test_exact_norm_equals_brute_force_jacobian(kind, code_size, mode):
    code_fn, x = _encoder(kind, code_size), _inputs()
    expected = np.sum(_brute_force_jacobians(code_fn, x) ** 2, axis=(1, 2))
    got = cae.jacobian_sq_norm(code_fn, x, mode=mode)
    assert got.shape == (x.shape[0],)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_exact_norm_matches_finite_differences():
    # Independent of autodiff altogether: central differences on a smooth (tanh) network.
    code_fn, x = _encoder("mlp", 3), _inputs()
    expected = np.sum(_finite_difference_jacobians(code_fn, x) ** 2, axis=(1, 2))
    np.testing.assert_allclose(cae.jacobian_sq_norm(code_fn, x), expected, rtol=2e-3)


def test_mode_is_picked_by_the_smaller_side():
    assert cae.jacobian_mode(input_size=784, code_size=30) == "reverse"
    assert cae.jacobian_mode(input_size=784, code_size=1000) == "forward"


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_projection_estimate_is_unbiased(mode):
    code_fn, x = _encoder("mlp", 5), _inputs()
    jac = _brute_force_jacobians(code_fn, x)
    exact = np.sum(jac**2, axis=(1, 2))
    # Var ‖vᵀJ‖² = Var ‖Ju‖² = 2 ‖J Jᵀ‖²_F for Gaussian probes: the mean of P is within 5 s.e.
    num_projections = 20_000
    gram = np.einsum("bij,bkj->bik", jac, jac)
    std_error = np.sqrt(2 * np.sum(gram**2, axis=(1, 2)) / num_projections)
    estimate = cae.jacobian_sq_norm_projection(
        code_fn, x, jax.random.key(3), num_projections, mode=mode
    )
    assert np.all(np.abs(np.asarray(estimate) - exact) < 5 * std_error)
    # A single probe is noisy but still centred: different keys give different values.
    one = cae.jacobian_sq_norm_projection(code_fn, x, jax.random.key(4), 1, mode=mode)
    assert not np.allclose(one, exact, rtol=1e-2)


def _model(family: str, one_layer: bool = False, **model_fields):
    overrides = {f"model.{k}": v for k, v in model_fields.items()}
    if one_layer:  # h = code_activation(W x + b)
        overrides["network.hidden"] = ()
    # tanh: smooth, so the small-noise limit below has no ReLU kinks to cross.
    config = tiny_config(family, "gaussian", **{"network.activation": "tanh", **overrides})
    model = models.make(config, data.describe(config.data))
    x = jax.random.uniform(jax.random.key(5), (6, 8, 8, 1))
    return model, model.init(jax.random.key(6), {"x": x}), x


def test_cae_loss_is_reconstruction_plus_weighted_exact_penalty():
    model, params, x = _model("cae", contractive_weight=0.7, jacobian="exact", num_projections=1)
    terms = model.loss(params, {"x": x}, jax.random.key(7))[1]
    penalty = np.sum(_brute_force_jacobians(lambda v: model.encode(params, v), x) ** 2, (1, 2))
    np.testing.assert_allclose(terms["jacobian_sq_norm"], penalty, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], terms["recon_nll"] + 0.7 * penalty, rtol=1e-5)

    # Its parameter gradient (autodiff through the VJPs) matches a central difference along a
    # random direction.
    @jax.jit
    def mean_penalty(p):
        return jnp.mean(model.penalty(p, x, jax.random.key(7)))

    direction = random_like(params, jax.random.key(12))
    grads = jax.jit(jax.grad(mean_penalty))(params)
    directional = sum(
        float(jnp.vdot(g, d))
        for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True)
    )
    h = 1e-3
    plus = mean_penalty(jax.tree.map(lambda p, d: p + h * d, params, direction))
    minus = mean_penalty(jax.tree.map(lambda p, d: p - h * d, params, direction))
    assert abs(directional) > 1e-3
    np.testing.assert_allclose(directional, float(plus - minus) / (2 * h), rtol=2e-2)


def test_sigmoid_code_is_the_one_layer_autoencoder_and_its_penalty_has_rifais_closed_form():
    """With no hidden layer and `code_activation=sigmoid`, h = sigmoid(W x + b), whose Jacobian
    norm Rifai et al. write as Σ_j (h_j (1 − h_j))² ‖W_j‖²: the autodiff penalty must equal it."""
    model, params, x = _model(
        "cae",
        one_layer=True,
        contractive_weight=1.0,
        jacobian="exact",
        num_projections=1,
        code_activation="sigmoid",
        latent_dim=20,
    )
    dense = params["encoder"]["params"]["out"]
    h = jax.nn.sigmoid(x.reshape(len(x), -1) @ dense["kernel"] + dense["bias"])
    np.testing.assert_allclose(model.encode(params, x), h, rtol=1e-6)
    closed_form = np.sum((h * (1 - h)) ** 2 * np.sum(dense["kernel"] ** 2, axis=0), axis=1)
    penalty = model.loss(params, {"x": x}, jax.random.key(7))[1]["jacobian_sq_norm"]
    np.testing.assert_allclose(penalty, closed_form, rtol=1e-5)


@pytest.mark.parametrize("code_activation", ["sigmoid", "linear"])
def test_closed_form_penalty_and_its_gradient_equal_the_exact_ones(code_activation):
    fields = dict(one_layer=True, contractive_weight=1.0, num_projections=1, latent_dim=20)
    exact, params, x = _model("cae", jacobian="exact", code_activation=code_activation, **fields)
    closed, _, _ = _model("cae", jacobian="closed_form", code_activation=code_activation, **fields)

    def penalty_and_grads(model):
        def mean_penalty(p):
            return jnp.mean(model.penalty(p, x, jax.random.key(7)))

        return jax.jit(jax.value_and_grad(mean_penalty))(params)

    (want, want_grads), (got, got_grads) = penalty_and_grads(exact), penalty_and_grads(closed)
    assert float(want) > 0
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for g, w in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_cae_projection_terms_draw_fresh_probes_per_key():
    model, params, x = _model(
        "cae", contractive_weight=1.0, jacobian="projection", num_projections=2
    )
    a = model.loss(params, {"x": x}, jax.random.key(8))[1]["jacobian_sq_norm"]
    b = model.loss(params, {"x": x}, jax.random.key(9))[1]["jacobian_sq_norm"]
    assert not np.allclose(a, b)


def test_scae_penalty_is_sigma_squared_jacobian_norm_for_small_noise():
    # h(x + ε) − h(x) ≈ Jε, so E‖h(x) − h(x + ε)‖² / σ² → ‖J‖²_F as σ → 0.
    sigma, samples = 1e-2, 20_000
    model, params, x = _model(
        "scae", contractive_weight=1.0, noise_std=sigma, num_noise_samples=samples
    )
    penalty = model.loss(params, {"x": x}, jax.random.key(10))[1]["code_shift_sq"] / sigma**2
    jac = _brute_force_jacobians(lambda v: model.encode(params, v), x)
    exact = np.sum(jac**2, axis=(1, 2))
    gram = np.einsum("bij,bkj->bik", jac, jac)
    std_error = np.sqrt(2 * np.sum(gram**2, axis=(1, 2)) / samples)
    # 5 s.e. of the Monte Carlo mean, plus 1 % for the O(σ²) curvature of the tanh network.
    assert np.all(np.abs(np.asarray(penalty) - exact) < 5 * std_error + 0.01 * exact)


def test_scae_loss_is_reconstruction_plus_weighted_penalty():
    model, params, x = _model("scae", contractive_weight=3.0, noise_std=0.1, num_noise_samples=1)
    terms = model.loss(params, {"x": x}, jax.random.key(11))[1]
    np.testing.assert_allclose(
        terms["loss"], terms["recon_nll"] + 3.0 * terms["code_shift_sq"], rtol=1e-6
    )
    assert np.all(np.asarray(terms["code_shift_sq"]) > 0)


@pytest.mark.parametrize(
    "family, overrides, message",
    [
        ("cae", {}, "config.model is missing contractive_weight, jacobian, num_projections"),
        (
            "cae",
            {"model.contractive_weight": 1.0, "model.jacobian": "svd", "model.num_projections": 1},
            "config.model.jacobian='svd': must be one of exact, projection, closed_form",
        ),
        (
            "cae",
            {
                "model.contractive_weight": 1.0,
                "model.jacobian": "closed_form",
                "model.num_projections": 1,
            },
            r"config.model.jacobian='closed_form' needs a one-layer encoder.*hidden=\(",
        ),
        (
            "cae",
            {
                "model.contractive_weight": -1.0,
                "model.jacobian": "exact",
                "model.num_projections": 1,
            },
            "config.model.contractive_weight=-1.0",
        ),
        (
            "cae",
            {
                "model.contractive_weight": 1.0,
                "model.jacobian": "projection",
                "model.num_projections": 0,
            },
            "config.model.num_projections=0",
        ),
        ("cae", {"model.code_activation": "tanh"}, "config.model.code_activation='tanh'"),
        (
            "scae",
            {"model.contractive_weight": 1.0, "model.noise_std": 0.0, "model.num_noise_samples": 1},
            "config.model.noise_std=0.0",
        ),
    ],
)
def test_config_errors_come_before_anything_compiles(family, overrides, message):
    with pytest.raises(ValueError, match=message):
        training.check_config(tiny_config(family, **overrides))
