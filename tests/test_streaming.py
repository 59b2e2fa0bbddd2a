"""Datasets over config.data.device_budget_mb stream from host memory, one minibatch at a time:
the same batches and keys as device-resident data, so the same run, and an exact resume."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from autoencoders import data, training
from autoencoders import workdir as workdirs
from tests.family_helpers import tiny_family_config
from tests.helpers import assert_resume_matches, tiny_config

TINY_BUDGET = {"data.device_budget_mb": 0.01}  # the 8x8 digits are ~0.1 MB: they stream


def test_the_budget_decides_what_streams():
    whole = data.load(tiny_config().data)
    streamed = data.load(tiny_config(**TINY_BUDGET).data)
    assert not whole.train.streamed and streamed.train.streamed and streamed.test.streamed
    np.testing.assert_array_equal(np.asarray(whole.train.images), streamed.train.images)


@pytest.mark.parametrize("family", ["vae", "aae"])
def test_a_streamed_run_is_the_run_on_device_data(family, tmp_path):
    """Against the per-step loop on device-resident data (the same program per step); the AAE
    for a family with its own multi-phase step."""
    steps = {"train.epoch_loop": "steps"}
    on_device = tiny_family_config(family, **steps)
    on_device = training.train_and_evaluate(on_device, str(tmp_path / "a"))
    config = tiny_family_config(family, **steps, **TINY_BUDGET)
    streamed = training.train_and_evaluate(config, str(tmp_path / "b"))
    speed = "train/examples_per_sec"
    for key in on_device.keys() - {speed}:
        np.testing.assert_allclose(streamed[key], on_device[key], rtol=1e-6, err_msg=key)
    *_, params_a, _ = workdirs.restore_params(str(tmp_path / "a"))
    *_, params_b, _ = workdirs.restore_params(str(tmp_path / "b"))
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_a_streamed_run_resumes_exactly(tmp_path):
    assert_resume_matches(tiny_config("vae", **TINY_BUDGET), tmp_path)


def test_what_cannot_stream_is_refused_before_training(tmp_path):
    config = tiny_config("vae", **TINY_BUDGET)
    config.vmap = {"seed": (0, 1)}
    with pytest.raises(ValueError, match="device_budget_mb=0.01: .*vmapped members cannot"):
        training.train_and_evaluate(config, str(tmp_path / "vmap"))
    with pytest.raises(ValueError, match="m2's labelled minibatches draw from the whole"):
        training.train_and_evaluate(tiny_family_config("m2", **TINY_BUDGET), str(tmp_path / "m2"))
    config = tiny_config("vae", **{"data.device_budget_mb": 0.0})
    with pytest.raises(ValueError, match=r"device_budget_mb=0.0: must be > 0"):
        training.check_config(config)
