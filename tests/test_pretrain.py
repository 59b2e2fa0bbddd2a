"""Greedy layer-wise pretraining (`autoencoders/pretrain.py`): which layers each stage trains, that
it lowers the deep autoencoder's loss before any end-to-end training, that training pretrains
once (not again on resume) and logs every stage, and the config errors."""

import json

import jax
import jax.numpy as jnp
import pytest

from autoencoders import pretrain, training
from tests.helpers import tiny_config

DEEP = {"network.hidden": (32, 16), "network.activation": "sigmoid", "model.latent_dim": 4}


def _setup(**overrides):
    config = tiny_config("ae", **{**DEEP, **overrides})
    run = training.setup(config)
    state = run.model.init_state(jax.random.key(0), run.example, run.tx)
    return run, state.params


def _images(run):
    return jnp.asarray(run.train.images, jnp.float32)[:256] / 255.0


def test_each_stage_pairs_an_encoder_layer_with_its_mirror_in_the_decoder():
    run, params = _setup()
    paths = pretrain.layer_paths(len(DEEP["network.hidden"]))
    assert [enc[-1] for enc, _ in paths] == ["dense_0", "dense_1", "out"]
    assert [dec[-1] for _, dec in paths] == ["out", "dense_1", "dense_0"]
    for enc, dec in paths:
        enc_kernel = pretrain._get(params, enc)["kernel"]
        dec_kernel = pretrain._get(params, dec)["kernel"]
        # The mirror maps the layer's output back to its input (the decoder's `out` to pixels).
        assert dec_kernel.shape[0] == enc_kernel.shape[1]
        assert dec_kernel.shape[1] == enc_kernel.shape[0] * run.model.likelihood.num_params


def test_a_network_without_hidden_layers_has_one_stage_whose_loss_is_the_models():
    run, params = _setup(**{"network.hidden": ()})
    ((enc, dec),) = pretrain.layer_paths(0)
    x = _images(run)
    pair = (pretrain._get(params, enc), pretrain._get(params, dec))
    stage = pretrain.stage_loss(run.model, 0)(pair, [], x)
    whole, _ = run.model.loss(params, {"x": x, "y": jnp.zeros(len(x), jnp.int32)}, None)
    assert float(stage) == pytest.approx(float(whole), rel=1e-5)


def test_pretraining_lowers_the_deep_autoencoders_loss_before_end_to_end_training():
    run, params = _setup(**{"train.pretrain_epochs": 3})
    logged = []
    pretrained = pretrain.pretrain(
        run.model, params, run.train.images, jax.random.key(1), lambda **f: logged.append(f)
    )
    x = _images(run)
    batch = {"x": x, "y": jnp.zeros(len(x), jnp.int32)}
    before, _ = run.model.loss(params, batch, None)
    after, _ = run.model.loss(pretrained, batch, None)
    assert float(after) < float(before) - 5.0  # nats per image
    assert [(f["layer"], f["epoch"]) for f in logged] == [
        (i, e) for i in range(3) for e in (1, 2, 3)
    ]
    for layer in range(3):  # each stage's own loss falls over its epochs
        values = [f["loss"] for f in logged if f["layer"] == layer]
        assert values[-1] < values[0]


def test_training_pretrains_from_scratch_only_and_logs_each_stage(tmp_path):
    config = tiny_config("ae", **{**DEEP, "train.pretrain_epochs": 1, "train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path))
    config.train.num_epochs = 2
    training.train_and_evaluate(config, str(tmp_path))  # resumes from epoch 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    events = [r["event"] for r in rows if "event" in r]
    # Each start's product library (`cpu_matmuls`) is chosen before the layers are pretrained.
    pretrain, start = ["pretrain"] * 3, ["start", "cpu_matmuls"]
    assert events == [*start, *pretrain, *start]
    stages = [r for r in rows if r.get("event") == "pretrain"]
    assert [r["layer"] for r in stages] == [0, 1, 2]
    assert "nats per image" in stages[0]["unit"]


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"model.family": "vae"}, "model.family='vae'"),
        ({"network.kind": "conv", "network.hidden": (32,)}, "network.kind='conv'"),
        ({"network.tied": True}, "network.tied=True"),
        ({"train.pretrain_epochs": -1}, "≥ 0"),
        ({"vmap": {"seed": (0, 1)}}, "config.vmap="),
    ],
)
def test_pretraining_it_cannot_do_is_refused_early(overrides, named):
    config = tiny_config("ae", **{"train.pretrain_epochs": 2, **overrides})
    with pytest.raises(ValueError, match="config.train.pretrain_epochs") as error:
        training.check_config(config)
    assert named in str(error.value)
