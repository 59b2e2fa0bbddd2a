"""Greedy layer-wise pretraining of a deep autoencoder (Bengio, Lamblin, Popovici & Larochelle
2007, "Greedy layer-wise training of deep networks"): the stand-in here for the stack of RBMs that
Hinton & Salakhutdinov (2006) train before fine-tuning their deep autoencoder.

With `config.train.pretrain_epochs = n > 0`, a run that starts from scratch first trains each
encoder layer together with its mirror in the decoder as a one-hidden-layer autoencoder of the
activations of the (already pretrained, frozen) layers below it, input layer first, n epochs each;
end-to-end training then starts from these parameters with a fresh optimizer.

Stage i of an MLP with L hidden layers trains the encoder's dense layer i (activations a_i -> a_i+1;
layer L is the code layer, linear or `model.code_activation`) and the decoder layer that maps
a_i+1 back (the decoder's `out` for i = 0, else its hidden layer L − i, followed by the hidden
activation as in the decoder). What a stage minimises, per example, batch mean:
  - stage 0: the model's own −log p(x | ·) (its likelihood; nats per image);
  - the stages above: the reconstruction of a_i, by cross-entropy summed over units when the hidden
    units are sigmoid (their activations are probabilities, as an RBM's units are), else by
    squared error summed over units.
Stages are plain autoencoders whatever the family adds (a denoising family's corruption, a
contractive penalty): those apply in end-to-end training. Each stage's loss per epoch is an event
"pretrain" in metrics.jsonl. A run killed while pretraining pretrains again when restarted (the
first checkpoint is that of epoch 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from absl import logging

from autoencoders import epoch, members, networks, optim
from autoencoders.models import ae, base

Params = Any
Path = tuple[str, ...]


def check_config(config, family: type[base.Model]) -> None:
    """A clear error when `config.train.pretrain_epochs` asks for what pretraining can't do."""
    epochs = config.train.get("pretrain_epochs", 0)
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(
            f"config.train.pretrain_epochs={epochs!r}: a whole number of epochs per layer, ≥ 0."
        )
    if not epochs:
        return
    problems = []
    if not family.encoder_outputs_code:
        problems.append(f"model.family={config.model.family!r} (its encoder outputs no code)")
    if config.network.kind != "mlp":
        problems.append(f"network.kind={config.network.kind!r}")
    if config.network.get("tied", False):
        problems.append("network.tied=True")
    if members.vmapped(config):
        problems.append(f"config.vmap={dict(config.vmap)} (pretrain each member as a run)")
    if problems:
        raise ValueError(
            f"config.train.pretrain_epochs={epochs}: greedy layer-wise pretraining needs a "
            "deterministic autoencoder family (ae, dae, cae, ...) with untied MLP networks "
            f"(network.kind='mlp'); got {', '.join(problems)}."
        )


def layer_paths(num_hidden: int) -> list[tuple[Path, Path]]:
    """(encoder layer, its mirror in the decoder) parameter paths, input layer first."""
    encoder = [("encoder", "params", "mlp", f"dense_{j}") for j in range(num_hidden)]
    decoder = [("decoder", "params", "mlp", f"dense_{j}") for j in range(num_hidden)]
    encoder.append(("encoder", "params", "out"))
    decoder.append(("decoder", "params", "out"))
    return [(encoder[i], decoder[num_hidden - i]) for i in range(num_hidden + 1)]


def _get(params: Params, path: Path) -> Any:
    for key in path:
        params = params[key]
    return params


def _with(params: Params, path: Path, value: Any) -> Params:
    """A copy of the nested dict `params` with `value` at `path`."""
    if not path:
        return value
    return {**params, path[0]: _with(params[path[0]], path[1:], value)}


def _dense(layer: dict[str, jax.Array], h: jax.Array) -> jax.Array:
    return h @ layer["kernel"] + layer["bias"]


def stage_loss(
    model: base.Model, stage: int
) -> Callable[[tuple[dict, dict], list[dict], jax.Array], jax.Array]:
    """Stage `stage`'s objective `(pair, below, x) -> batch-mean loss`: `pair` the (encoder,
    decoder) layer dicts it trains, `below` the frozen encoder layers under it (input layer
    first), x a batch of preprocessed images."""
    config = model.config
    num_hidden = len(config.network.hidden)
    act = networks.ACTIVATIONS[config.network.activation]
    sigmoid_code = isinstance(model, ae.Autoencoder) and ae.code_activation(config) == "sigmoid"

    def loss(pair: tuple[dict, dict], below: list[dict], x: jax.Array) -> jax.Array:
        a = x.reshape(x.shape[0], -1)
        for layer in below:
            a = act(_dense(layer, a))
        h = _dense(pair[0], a)
        if stage < num_hidden:
            h = act(h)
        elif sigmoid_code:
            h = jax.nn.sigmoid(h)
        out = _dense(pair[1], h)
        if stage == 0:
            nll, _ = model.pixel_terms(out.reshape(*x.shape, -1), x)
            return jnp.mean(nll)
        if config.network.activation == "sigmoid":  # cross-entropy of the unit probabilities
            return jnp.mean(jnp.sum(jax.nn.softplus(out) - a * out, axis=-1))
        return jnp.mean(jnp.sum((act(out) - a) ** 2, axis=-1))

    return loss


def stage_unit(config, stage: int) -> str:
    if stage == 0:
        return "the model's −log p(x | ·), nats per image (batch mean)"
    if config.network.activation == "sigmoid":
        return "cross-entropy of the layer-below unit probabilities, nats per example, summed"
    return "squared error of the layer-below activations per example, summed over units"


def pretrain(
    model: base.Model,
    params: Params,
    images: jax.Array,
    key: jax.Array,
    log: Callable[..., None] | None = None,
) -> Params:
    """`params` with every encoder layer and its decoder mirror pretrained, input layer first.

    `images`: the training split as stored (uint8 on device), preprocessed per minibatch as in
    training (`epoch.preprocessor`); `log(**fields)`: called once per stage and epoch."""
    config = model.config
    epochs, batch_size = config.train.pretrain_epochs, config.train.batch_size
    steps = images.shape[0] // batch_size
    if steps == 0:
        raise ValueError(
            f"config.train.batch_size={batch_size} exceeds the {images.shape[0]} training images."
        )
    preprocess = epoch.preprocessor(model, config.data)
    paths = layer_paths(len(config.network.hidden))
    for stage, (enc_path, dec_path) in enumerate(paths):
        loss = stage_loss(model, stage)
        tx = optim.make(config.optimizer, steps_per_epoch=steps, num_epochs=epochs)
        pair = (_get(params, enc_path), _get(params, dec_path))
        below = [_get(params, enc) for enc, _ in paths[:stage]]
        opt_state = tx.init(pair)

        @jax.jit
        def run_epoch(pair, opt_state, below, images, key, loss=loss, tx=tx):
            order_key, data_key = jax.random.split(key)
            order = jax.random.permutation(order_key, images.shape[0])[: steps * batch_size]
            keys = jax.random.split(data_key, steps)

            def step(carry, inputs):
                pair, opt_state = carry
                indices, step_key = inputs
                x = preprocess(images[indices], step_key)
                value, grads = jax.value_and_grad(loss)(pair, below, x)
                updates, opt_state = tx.update(grads, opt_state, pair)
                return (optax.apply_updates(pair, updates), opt_state), value

            carry, values = jax.lax.scan(
                step, (pair, opt_state), (order.reshape(steps, batch_size), keys)
            )
            return *carry, jnp.mean(values)

        for epoch_number in range(1, epochs + 1):
            start = time.perf_counter()
            stage_key = jax.random.fold_in(jax.random.fold_in(key, stage), epoch_number)
            pair, opt_state, value = run_epoch(pair, opt_state, below, images, stage_key)
            value, seconds = float(value), time.perf_counter() - start
            logging.info(
                "pretraining layer %d/%d, epoch %d/%d: loss %.3f  %.1f s",
                stage + 1, len(paths), epoch_number, epochs, value, seconds,
            )  # fmt: skip
            if log is not None:
                log(
                    layer=stage, epoch=epoch_number, loss=value, seconds=seconds,
                    unit=stage_unit(config, stage),
                )  # fmt: skip
        params = _with(_with(params, enc_path, pair[0]), dec_path, pair[1])
    return params
