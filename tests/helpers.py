"""Shared test utilities: tiny configs on the embedded digits, real-data detection, resume check."""

from __future__ import annotations

import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autoencoders import data, epoch, models, optim, training
from autoencoders import workdir as workdirs
from configs import common

REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_TFDS = REPO.parent / "shared" / "tensorflow_datasets"


def shared_tfds_dir() -> str | None:
    """The prepared TFDS data dir (../shared or $TFDS_DATA_DIR) if it holds MNIST, else None."""
    for candidate in (os.environ.get("TFDS_DATA_DIR"), str(_SHARED_TFDS)):
        if candidate and (pathlib.Path(candidate) / "mnist").is_dir():
            return candidate
    return None


def frey_face_dir() -> str | None:
    """A folder with frey_face/frey_rawface.mat ($AUTOENCODERS_DATA_DIR or ../shared/datasets)."""
    for candidate in (
        os.environ.get("AUTOENCODERS_DATA_DIR"),
        str(REPO.parent / "shared" / "datasets"),
    ):
        if candidate and (pathlib.Path(candidate) / "frey_face" / "frey_rawface.mat").is_file():
            return candidate
    return None


requires_frey_face = pytest.mark.skipif(
    frey_face_dir() is None, reason="needs frey_rawface.mat (../shared/datasets/frey_face)"
)

requires_shared_data = pytest.mark.skipif(
    shared_tfds_dir() is None, reason="needs ../shared/tensorflow_datasets (real MNIST)"
)


# The adversarial autoencoder's own config.model fields, for tiny_config('aae', **AAE). At this
# tiny size the lecture's slower discriminator (lr / 5) and two generator steps make the codes
# chase the discriminator around the circle; equal rates settle in a few epochs.
AAE = {
    "model.prior": "mixture",
    "model.conditional": False,
    "model.disc_hidden": (64, 64),
    "model.disc_learning_rate_factor": 1.0,
    "model.generator_steps": 1,
}


def forced_cpu_devices_flags(count: int) -> str:
    """XLA_FLAGS for `count` CPU devices in one process, after the session's (conftest.py).
    Their collectives meet in a rendezvous that aborts the process when one device's thread is
    40 s late (XLA's default); on a loaded 2-core CI machine a thread was (2026-12-02: three of
    four threads waited, one never ran in time). A hung collective still ends the run, after
    300 s, within the tests' timeouts."""
    return (
        f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count} "
        "--xla_cpu_collective_call_terminate_timeout_seconds=300"
    ).strip()


def tiny_config(family: str = "vae", likelihood: str = "bernoulli", **overrides):
    """A seconds-long run on the embedded 8×8 digits. `overrides`: dotted keys -> values."""
    config = common.base_config()
    config.model.family = family
    config.model.latent_dim = 2
    common.apply_likelihood(config, likelihood)
    common.apply_dataset(config, "digits")
    config.network.hidden = (32,)
    config.train.num_epochs = 3
    config.train.eval_every = 1
    config.train.eval_batch_size = 128
    config.checkpoint.every_epochs = 1
    config.checkpoint.max_to_keep = 10
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def tiny_conv_vae(batch_size: int):
    """A conv VAE (conv features 4, 8) on binary 8×8 images: (config, data spec, a random batch)."""
    config = tiny_config("vae", **{"network.kind": "conv", "network.conv_features": (4, 8)})
    spec = data.DataSpec(
        name="synthetic", shape=(8, 8, 1), num_levels=2, num_classes=10, kind="binary"
    )
    pixels = jax.random.bernoulli(jax.random.key(1), 0.3, (batch_size, 8, 8, 1))
    batch = {"x": pixels.astype(jnp.float32), "y": jnp.zeros((batch_size,), jnp.int32)}
    return config, spec, batch


def assert_resume_matches(config, tmp_path: pathlib.Path) -> None:
    """A run cut short after epoch 1 and resumed ends with the uninterrupted run's parameters."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    final_full = training.train_and_evaluate(config, str(full))
    # Simulate a kill after the first checkpoint: keep only checkpoint 1 and its metrics so far.
    shutil.copytree(full, cut)
    for step_dir in (cut / "checkpoints").iterdir():
        if step_dir.name.isdigit() and int(step_dir.name) > 1:
            shutil.rmtree(step_dir)
    final_cut = training.train_and_evaluate(config, str(cut))
    *_, params_full, epoch_full = workdirs.restore_params(str(full))
    *_, params_cut, epoch_cut = workdirs.restore_params(str(cut))
    assert epoch_full == epoch_cut == config.train.num_epochs
    for a, b in zip(jax.tree.leaves(params_full), jax.tree.leaves(params_cut), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    eval_keys = [k for k in final_full if not k.startswith("train/")]
    assert eval_keys
    for k in eval_keys:
        assert final_full[k] == final_cut[k], k


def train_epochs(config, num_epochs: int):
    """`num_epochs` of the compiled training epoch, outside a workdir: (model, the parameters
    before, after, the training images as model inputs (grey levels, not binarized), their
    labels)."""
    dataset = data.load(config.data)
    train = dataset.train
    model = models.make(config, dataset.spec)
    steps = train.size // config.train.batch_size
    tx = optim.make(config.optimizer, steps, num_epochs)
    example = {"x": jnp.zeros((2, *dataset.spec.shape)), "y": jnp.zeros((2,), jnp.int32)}
    state = model.init_state(jax.random.key(0), example, tx)
    before = jax.tree.map(np.array, state.params)  # a copy: the epoch donates the state's buffers
    train_epoch = epoch.make_train_epoch(model, tx, config, steps)
    for i in range(num_epochs):
        state, _ = train_epoch(state, train.images, train.labels, jax.random.key(10 + i))
    x = data.preprocess(train.images, jax.random.key(1), dataset.spec.num_levels, "none", False)
    return model, before, state.params, x, np.asarray(train.labels)
