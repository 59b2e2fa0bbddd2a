"""`autoencoders.load(workdir)`: a trained run as an object taking raw images."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import autoencoders
from autoencoders import data, density, evaluation, training
from autoencoders import workdir as workdirs
from tests.helpers import REPO, tiny_config


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory) -> str:
    """A VAE on grey levels with no binarization: its preprocessing is deterministic."""
    workdir = tmp_path_factory.mktemp("grey") / "run"
    config = tiny_config("vae", "continuous_bernoulli", **{"data.binarization": "none"})
    training.train_and_evaluate(config, str(workdir))
    return str(workdir)


@pytest.fixture(scope="module")
def raw_test_images(grey_run) -> tuple[np.ndarray, np.ndarray]:
    split = data.load(workdirs.load_config(grey_run).data).test
    return np.asarray(split.images), np.asarray(split.labels)


def test_load_encodes_raw_images_as_the_run_saw_them(grey_run, raw_test_images):
    trained = autoencoders.load(grey_run)
    raw, labels = raw_test_images
    assert raw.dtype == np.uint8 and raw.shape[1:] == trained.spec.shape
    codes = trained.encode(raw)
    # The evaluation's model inputs of the same images (grey levels / 16: no randomness).
    run = evaluation.load_run(grey_run)
    expected = density.encode(run.model, run.params, run.x_test, jnp.asarray(labels))
    np.testing.assert_allclose(codes, expected, rtol=1e-6, atol=1e-6)
    # The same images as floats in [0, 1], without the channel axis, or one at a time.
    as_floats = raw[..., 0].astype(np.float32) / 16
    np.testing.assert_allclose(trained.encode(as_floats), codes, atol=1e-6)
    np.testing.assert_allclose(trained.encode(raw[3])[0], codes[3], atol=1e-6)


def test_decode_reconstruct_sample_and_log_likelihood(grey_run, raw_test_images):
    trained = autoencoders.load(grey_run)
    raw = raw_test_images[0][:40]
    decoded = trained.decode(trained.encode(raw))
    assert decoded.shape == raw.shape and decoded.min() >= 0 and decoded.max() <= 1
    np.testing.assert_allclose(trained.reconstruct(raw), decoded, atol=1e-6)
    run = evaluation.load_run(grey_run)
    np.testing.assert_allclose(
        decoded, run.model.reconstruct(run.params, run.x_test[:40], None), atol=1e-5
    )
    samples = trained.sample(5, seed=3)
    assert samples.shape == (5, *trained.spec.shape)
    np.testing.assert_array_equal(samples, trained.sample(5, seed=3))

    # log p(x) by importance sampling: above the ELBO in expectation (Burda et al.), and equal
    # to the library's estimator on the same inputs and key.
    log_px = trained.log_likelihood(raw, num_samples=64)
    no_labels = jnp.full((40,), -1)
    terms = density.map_examples(
        run.model.eval_terms, run.params, run.x_test[:40], no_labels, jax.random.key(0), 40
    )
    assert log_px.shape == (40,) and np.all(np.isfinite(log_px))
    assert log_px.mean() > -np.asarray(terms["neg_elbo"]).mean()
    key = jax.random.fold_in(jax.random.key(0), 1)
    same = density.importance_sampled_log_likelihood(
        run.model, run.params, run.x_test[:40], no_labels, key, 64
    )[64]
    np.testing.assert_allclose(log_px, same, rtol=1e-5)


def test_load_an_earlier_epoch_and_a_vmapped_member(tmp_path):
    config = tiny_config("vae", **{"train.num_epochs": 2})
    config.vmap = {"seed": (0, 1)}
    training.train_and_evaluate(config, str(tmp_path))
    members = sorted((tmp_path / workdirs.MEMBERS_DIR).iterdir())
    assert len(members) == 2
    first, second = (autoencoders.load(str(m)) for m in members)
    assert first.epoch == 2 and autoencoders.load(str(members[0]), epoch=1).epoch == 1
    images = np.zeros((2, *first.spec.shape), np.uint8)
    assert not np.allclose(first.encode(images), second.encode(images))  # different seeds


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.encode(np.zeros((2, 9, 9), np.uint8)), "this run's images are (8, 8, 1)"),
        (lambda m: m.encode(np.full((1, 8, 8), 17, np.uint8)), "have levels 0..16"),
        (lambda m: m.encode(np.full((1, 8, 8), 1.5)), "float images must be finite and in [0, 1]"),
        (lambda m: m.encode(np.zeros((1, 8, 8), np.int64)), "give uint8 levels"),
        (lambda m: m.decode(np.zeros((3, 5))), "latent_dim is 2"),
    ],
)
def test_bad_inputs_are_named(grey_run, call, message):
    with pytest.raises(ValueError) as error:
        call(autoencoders.load(grey_run))
    assert message in str(error.value)


def test_what_a_family_cannot_do_is_refused(tmp_path):
    ae = tmp_path / "ae"
    training.train_and_evaluate(tiny_config("ae", "gaussian", **{"train.num_epochs": 1}), str(ae))
    trained = autoencoders.load(str(ae))
    with pytest.raises(ValueError, match="deterministic autoencoder"):
        trained.log_likelihood(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="no prior"):
        trained.sample(2)
    bernoulli_grey = tmp_path / "xent"
    config = tiny_config("vae", **{"data.binarization": "none", "train.num_epochs": 1})
    training.train_and_evaluate(config, str(bernoulli_grey))
    with pytest.raises(ValueError, match="not a likelihood"):
        autoencoders.load(str(bernoulli_grey)).log_likelihood(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        autoencoders.load(str(tmp_path / "nothing"))
    assert pathlib.Path(ae, "config.json").exists()


def test_load_a_run_while_it_trains(tmp_path):
    """The training process holds the workdir's lock; loading reads its newest checkpoint
    without it, and training goes on."""
    command = [
        sys.executable, "-m", "experiments.train", "--config=configs/vae.py:data=digits,latent=2",
        "--config.network.hidden=(16,)", "--config.train.num_epochs=1000",
        "--config.checkpoint.every_epochs=1", f"--workdir={tmp_path}",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        marker = tmp_path / "checkpoints" / "2" / "commit_success.txt"
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "no checkpoint of epoch 2 within 2 minutes"
        trained = autoencoders.load(str(tmp_path))
        assert trained.epoch >= 2 and trained.encode(np.zeros((3, 8, 8), np.uint8)).shape == (3, 2)
        assert process.poll() is None  # still training
    finally:
        process.send_signal(signal.SIGINT)  # a clean stop at the end of its epoch
        process.wait(timeout=60)
