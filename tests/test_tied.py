"""Tied weights (`config.network.tied`): the decoder is the encoder's transpose plus biases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, metrics, models, training
from autoencoders import workdir as workdirs
from tests.family_helpers import tiny_family_config
from tests.helpers import tiny_config


def _tied_model(config_name: str, **overrides):
    config = tiny_family_config(
        config_name, "", "bernoulli", **{"network.tied": True, "network.hidden": (16,)}, **overrides
    )
    training.check_config(config)
    model = models.make(config, data.describe(config.data))
    x = jax.random.uniform(jax.random.key(0), (5, 8, 8, 1))
    return model, model.init(jax.random.key(1), {"x": x}), x


def test_the_decoder_is_the_encoders_transpose():
    model, params, _ = _tied_model("ae")
    enc = params["encoder"]["params"]
    w_in, w_code = enc["mlp"]["dense_0"]["kernel"], enc["out"]["kernel"]  # (64, 16), (16, 2)
    dec = params["decoder"]["params"]
    assert {k: v.shape for k, v in dec.items()} == {"bias_0": (16,), "bias_1": (64,)}
    dec = {k: jax.random.normal(jax.random.key(2), v.shape) for k, v in dec.items()}
    params = {**params, "decoder": {"params": dec}}
    z = jax.random.normal(jax.random.key(3), (4, 2))
    expected = jax.nn.relu(z @ w_code.T + dec["bias_0"]) @ w_in.T + dec["bias_1"]
    out = model.decode(params, z)
    assert out.shape == (4, 8, 8, 1, 1)
    np.testing.assert_allclose(out.reshape(4, 64), expected, rtol=1e-5, atol=1e-6)


def test_the_shared_kernel_gets_the_gradient_of_both_uses():
    model, params, x = _tied_model("ae")
    grads = jax.grad(lambda p: model.loss(p, {"x": x}, jax.random.key(4))[0])(params)
    w_in = params["encoder"]["params"]["mlp"]["dense_0"]["kernel"]

    def loss_with_separate_copies(enc_w, dec_w):
        # The same network with the input kernel split into an encoder and a decoder copy.
        enc = jax.tree.map(lambda a: a, params["encoder"])
        enc["params"]["mlp"]["dense_0"]["kernel"] = enc_w
        h = model.encoder.apply(enc, x)
        b = params["decoder"]["params"]
        w_code = params["encoder"]["params"]["out"]["kernel"]
        logits = jax.nn.relu(h @ w_code.T + b["bias_0"]) @ dec_w.T + b["bias_1"]
        xs = x.reshape(5, 64)
        return jnp.mean(jnp.sum(jax.nn.softplus(logits) - xs * logits, axis=-1))

    g_enc, g_dec = jax.grad(loss_with_separate_copies, argnums=(0, 1))(w_in, w_in)
    np.testing.assert_allclose(
        grads["encoder"]["params"]["mlp"]["dense_0"]["kernel"], g_enc + g_dec, rtol=1e-4, atol=1e-6
    )
    assert float(jnp.abs(g_dec).sum()) > 0 and float(jnp.abs(g_enc).sum()) > 0


def test_a_tied_contractive_ae_trains_and_restores(tmp_path):
    config = tiny_family_config("cae", "", "bernoulli", **{"network.tied": True})
    config.train.num_epochs = 2
    final = training.train_and_evaluate(config, str(tmp_path))
    rows = metrics.latest_by_epoch(str(tmp_path / "metrics.jsonl"), "train")
    assert rows[2]["loss"] < rows[1]["loss"]
    assert final["test/jacobian_sq_norm"] > 0
    _, model, params, epoch = workdirs.restore_params(str(tmp_path))
    assert model.tied and epoch == 2
    assert set(params["decoder"]["params"]) == {"bias_0", "bias_1"}  # no decoder kernels saved
    x = jax.random.uniform(jax.random.key(5), (3, 8, 8, 1))
    assert model.reconstruct(params, x).shape == (3, 8, 8, 1)


@pytest.mark.parametrize(
    "family, overrides, message",
    [
        ("vae", {}, "family 'vae' cannot tie its decoder"),
        ("ae", {"network.kind": "conv"}, "config.network.tied=True needs kind='mlp'"),
        ("ae", {"likelihood.learn_sigma": True}, "2 decoder outputs per pixel"),
    ],
)
def test_tied_configs_that_cannot_be_tied_are_refused_early(family, overrides, message):
    likelihood = "gaussian" if "likelihood.learn_sigma" in overrides else "bernoulli"
    config = tiny_config(family, likelihood, **{"network.tied": True}, **overrides)
    with pytest.raises(ValueError, match=message):
        training.check_config(config)
