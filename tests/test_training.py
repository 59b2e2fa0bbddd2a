"""The training loop: learning, one trace per run, resume, NaN guard, config checks, metrics."""

import json
import logging
import os

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from autoencoders import checkpoints, data, epoch, metrics, models, optim, training
from autoencoders import workdir as workdirs
from tests.helpers import AAE, assert_resume_matches, tiny_config


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vae")
    config = tiny_config("vae", **{"train.num_epochs": 4})
    final = training.train_and_evaluate(config, str(workdir))
    return config, workdir, final


def _train_losses(workdir):
    rows = metrics.latest_by_epoch(str(workdir / "metrics.jsonl"), "train")
    return [rows[e]["loss"] for e in sorted(rows)]


def test_vae_learns_on_digits(vae_run):
    config, workdir, final = vae_run
    losses = _train_losses(workdir)
    assert len(losses) == config.train.num_epochs
    assert losses[-1] < losses[0] - 2.0
    # Eval terms add up: the bound is reconstruction + KL, in nats per image.
    assert final["test/neg_elbo"] == pytest.approx(final["test/recon_nll"] + final["test/kl"])


def test_workdir_contents(vae_run):
    config, workdir, _ = vae_run
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["model"]["latent_dim"] == config.model.latent_dim
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [
        1,
        2,
        3,
        4,
    ]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    start = rows[0]
    assert start["event"] == "start" and start["headline"] == "neg_elbo"
    assert "nats per image" in start["units"]["neg_elbo"]
    test_rows = [r for r in rows if r.get("split") == "test"]
    assert [r["epoch"] for r in test_rows] == [1, 2, 3, 4]
    assert {"neg_elbo", "recon_nll", "kl", "sq_err"} <= set(test_rows[-1])
    # The start event gives the unit of every metric the rows hold.
    metric_names = {k for r in rows if "split" in r for k in r} - {"step", "epoch", "split", "time"}
    assert metric_names <= set(start["units"])
    # TensorBoard holds every row's scalars (written in a background thread, flushed on close).
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415

    events = event_accumulator.EventAccumulator(str(workdir / "tensorboard"), {"tensors": 0})
    events.Reload()
    logged = [e.step for e in events.Tensors("test/neg_elbo")]
    assert logged == [r["step"] for r in test_rows]
    last = tf_scalar(events.Tensors("test/neg_elbo")[-1])
    assert last == pytest.approx(test_rows[-1]["neg_elbo"])


def test_ae_learns_with_each_likelihood(tmp_path):
    for likelihood in ("gaussian", "continuous_bernoulli", "discretized_logistic"):
        config = tiny_config("ae", likelihood)
        training.train_and_evaluate(config, str(tmp_path / likelihood))
        losses = _train_losses(tmp_path / likelihood)
        assert losses[-1] < losses[0], likelihood


def test_bernoulli_on_grey_levels_is_reported_as_cross_entropy(tmp_path):
    config = tiny_config("vae", **{"data.binarization": "none", "train.num_epochs": 1})
    final = training.train_and_evaluate(config, str(tmp_path))
    assert "test/xent_plus_kl" in final and "test/recon_xent" in final
    assert "test/neg_elbo" not in final


def test_learns_on_tfds_mock_mnist_with_conv_network(tmp_path):
    config = tiny_config(
        "vae",
        **{
            "data.name": "mnist",
            "network.kind": "conv",
            "network.conv_features": (8, 16),
            "train.batch_size": 32,
            "train.num_epochs": 3,
        },
    )
    with tfds.testing.mock_data(num_examples=256):
        training.train_and_evaluate(config, str(tmp_path))
    losses = _train_losses(tmp_path)
    assert losses[-1] < losses[0]


def test_epoch_function_is_traced_once():
    config = tiny_config("vae")
    dataset = data.load(config.data)
    model = models.make(config, dataset.spec)
    steps = dataset.train.size // config.train.batch_size
    tx = optim.make(config.optimizer, steps, 3)
    example = {"x": np.zeros((4, 8, 8, 1), np.float32), "y": np.zeros(4, np.int32)}
    state = model.init_state(jax.random.key(0), example, tx)
    train_epoch = epoch.make_train_epoch(model, tx, config, steps)
    for i in range(3):
        state, _ = train_epoch(state, dataset.train.images, dataset.train.labels, jax.random.key(i))
    assert train_epoch._cache_size() == 1
    assert int(state.step) == 3 * steps


def test_same_seed_same_result_other_seed_differs(tmp_path):
    config = tiny_config("vae", **{"train.num_epochs": 1})
    a = training.train_and_evaluate(config, str(tmp_path / "a"))
    b = training.train_and_evaluate(config, str(tmp_path / "b"))
    config.seed = 1
    c = training.train_and_evaluate(config, str(tmp_path / "c"))
    assert a["test/neg_elbo"] == b["test/neg_elbo"] != c["test/neg_elbo"]


@pytest.mark.parametrize("family", ["ae", "vae"])
def test_resume_equals_uninterrupted_run(family, tmp_path):
    assert_resume_matches(tiny_config(family), tmp_path)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = tiny_config("vae", **{"train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path))
    config.train.num_epochs = 2
    config.optimizer.learning_rate = 1e30
    with pytest.raises(FloatingPointError, match=r"epoch 2.*last good checkpoint \(epoch 1\)"):
        training.train_and_evaluate(config, str(tmp_path), allow_config_change=True)
    manager = checkpoints.checkpoint_manager(str(tmp_path), config)
    assert manager.latest_step() == 1
    manager.close()


def test_resuming_with_a_different_config_is_refused(tmp_path):
    config = tiny_config("vae", **{"train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path))
    config.model.latent_dim = 3
    with pytest.raises(ValueError, match=r"(?s)model.latent_dim: 2 -> 3.*--allow_config_change"):
        training.train_and_evaluate(config, str(tmp_path))


def test_more_epochs_or_other_periods_resume_without_permission(tmp_path):
    """Raising num_epochs under a schedule that does not depend on it, or changing how often
    to evaluate and checkpoint, resumes as it is: the longer run equals a fresh run that long."""
    fresh = training.train_and_evaluate(tiny_config("vae"), str(tmp_path / "fresh"))
    config = tiny_config("vae", **{"train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path / "extended"))
    config.train.num_epochs = 3
    config.checkpoint.max_to_keep = 5
    extended = training.train_and_evaluate(config, str(tmp_path / "extended"))
    speed = "train/examples_per_sec"
    assert {k: v for k, v in extended.items() if k != speed} == {
        k: v for k, v in fresh.items() if k != speed
    }
    # A schedule that depends on the number of epochs would not give that run: refused.
    config = tiny_config("vae", **{"train.num_epochs": 1, "optimizer.schedule": "cosine"})
    training.train_and_evaluate(config, str(tmp_path / "cosine"))
    config.train.num_epochs = 2
    with pytest.raises(ValueError, match=r"train.num_epochs: 1 -> 2.*--allow_config_change"):
        training.train_and_evaluate(config, str(tmp_path / "cosine"))


def test_a_run_written_before_a_config_field_existed_resumes_as_it_is(tmp_path, caplog):
    """config.json of an older version lacks fields added since (data.image_size): they count
    as their default, so re-running the same command is no config change."""
    config = tiny_config("vae", **{"train.num_epochs": 1})
    training.train_and_evaluate(config, str(tmp_path))
    path = tmp_path / "config.json"
    written = json.loads(path.read_text())
    del written["data"]["image_size"]
    path.write_text(json.dumps(written))
    config.train.num_epochs = 2
    with caplog.at_level(logging.WARNING):
        training.train_and_evaluate(config, str(tmp_path))
    assert [r.getMessage() for r in caplog.records if "changed config" in r.getMessage()] == [
        "Resuming with a changed config: train.num_epochs"
    ]


def test_a_workdir_in_use_is_refused_and_released_after(vae_run):
    config, workdir, _ = vae_run
    metrics_before = (workdir / "metrics.jsonl").read_text()
    with workdirs.lock(str(workdir)):
        holder = (workdir / workdirs.LOCK_FILE).read_text()
        assert holder.startswith(f"pid {os.getpid()} on ")
        with pytest.raises(
            workdirs.WorkdirInUse, match=rf"another training run \(pid {os.getpid()} "
        ):
            training.train_and_evaluate(config, str(workdir))
    assert (workdir / "metrics.jsonl").read_text() == metrics_before  # refused before any write
    with workdirs.lock(str(workdir)):  # released when its holder left the block
        pass


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.latent_dim": -2}, "config.model.latent_dim=-2"),
        ({"model.family": "gan"}, "config.model.family='gan': must be one of"),
        ({"likelihood.name": "poisson"}, "config.likelihood.name='poisson'"),
        ({"model.beta": -1.0}, "config.model.beta"),
        ({"train.batch_size": 0}, "config.train.batch_size=0"),
        ({"optimizer.name": "adamax"}, "config.optimizer.name='adamax'"),
        ({"network.activation": "cube"}, "config.network.activation='cube'"),
        ({"network.kind": "conv", "network.conv_features": (4, 4, 4, 4)}, "divisible by 16"),
        ({"likelihood.learn_sigma": True, "likelihood.name": "gaussian"}, "dequantize"),
        (
            {
                "likelihood.name": "discretized_logistic",
                "data.binarization": "none",
                "data.dequantize": True,
            },
            "integer grey",
        ),
        ({"data.binarization": "dynamic", "data.dequantize": True}, "dequantize grey levels"),
        ({"network.output_bias": "ones"}, "config.network.output_bias='ones': must be one of"),
        (
            {"network.output_bias": "data_mean", "network.kind": "conv"},
            "output_bias='data_mean' needs kind='mlp'",
        ),
        (
            {"network.output_bias": "data_mean", "likelihood.name": "continuous_bernoulli"},
            "likelihood.name='continuous_bernoulli': must be one of bernoulli",
        ),
    ],
)
def test_config_errors_are_clear_and_early(overrides, message):
    config = tiny_config("vae", **overrides)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        training.check_config(config)


@pytest.mark.parametrize("likelihood", ["gaussian_learned", "bernoulli"])
def test_scanned_epoch_carrying_each_steps_inputs_equals_steps_that_make_their_own(likelihood):
    """The scan makes step i+1's inputs (dequantized, or dynamically binarized) during step i and
    carries them; the per-step loop makes each step's inside it: the same keys, the same numbers."""
    config = tiny_config("vae", likelihood)
    assert config.data.dequantize or config.data.binarization == "dynamic"
    run = training.setup(config, data_parallel=False)
    results = {}
    for loop in ("scan", "steps"):
        config.train.epoch_loop = loop
        train_epoch = epoch.make_train_epoch(
            run.model, run.tx, config, run.steps_per_epoch, run.context
        )
        state = run.model.init_state(jax.random.key(0), run.example, run.tx)
        for number in range(2):
            state, metrics = train_epoch(
                state, run.train.images, run.train.labels, jax.random.key(number)
            )
        results[loop] = (jax.device_get(state.params), jax.device_get(metrics))
    (scan_params, scan_metrics), (step_params, step_metrics) = results["scan"], results["steps"]
    for a, b in zip(jax.tree.leaves(scan_params), jax.tree.leaves(step_params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name, value in scan_metrics.items():
        assert value == pytest.approx(step_metrics[name], rel=1e-5), name


def test_step_loop_epoch_equals_scanned_epoch(tmp_path, monkeypatch):
    """The per-step loop (auto for conv nets on CPU lowered to XLA's convolutions) runs the same
    steps as the compiled scan (auto for everything else)."""
    conv = {"network.kind": "conv", "network.conv_features": (4,), "train.num_epochs": 2}
    assert epoch.epoch_loop(tiny_config("vae", **conv)) == "scan"  # convolutions as matmuls
    assert epoch.epoch_loop(tiny_config("vae")) == "scan"
    with monkeypatch.context() as m:
        m.setenv("AUTOENCODERS_CONV_LOWERING", "xla")
        assert epoch.epoch_loop(tiny_config("vae", **conv)) == "steps"
    finals = {}
    for loop in ("scan", "steps"):
        config = tiny_config("vae", **conv, **{"train.epoch_loop": loop})
        finals[loop] = training.train_and_evaluate(config, str(tmp_path / loop))
        finals[loop + "_params"] = workdirs.restore_params(str(tmp_path / loop))[2]
    for a, b in zip(
        *(jax.tree.leaves(finals[k]) for k in ("scan_params", "steps_params")), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert finals["scan"]["test/neg_elbo"] == pytest.approx(finals["steps"]["test/neg_elbo"], 1e-4)


@pytest.mark.parametrize(
    "family, fields, vmapped", [("vae", {}, False), ("vae", {}, True), ("aae", AAE, False)]
)
def test_output_bias_data_mean_starts_the_decoder_at_the_data_marginal(
    tmp_path, family, fields, vmapped
):
    """network.output_bias='data_mean': the decoder's output bias starts at the logits of the
    training images' mean intensities (clipped to [0.001, 0.999]), as in Burda et al.'s code; a
    learning rate of 1e-12 keeps it there through the epoch that writes the checkpoint."""
    overrides = {
        **fields,
        "network.output_bias": "data_mean",
        "optimizer.learning_rate": 1e-12,
        "train.num_epochs": 1,
    }
    if vmapped:
        overrides["vmap"] = {"seed": (0, 1)}
    config = tiny_config(family, **overrides)  # aae: its own state, one optimizer per phase
    training.train_and_evaluate(config, str(tmp_path))
    dirs = workdirs.result_dirs(workdirs.config_json(config), str(tmp_path))
    assert len(dirs) == (2 if vmapped else 1)
    dataset = data.load(config.data)
    intensity = np.asarray(dataset.train.images, np.float64).mean(0) / (dataset.spec.num_levels - 1)
    p = np.clip(intensity, 1e-3, 1 - 1e-3).reshape(-1)
    for workdir in dirs:
        bias = workdirs.restore_params(workdir)[2]["decoder"]["params"]["out"]["bias"]
        np.testing.assert_allclose(np.asarray(bias), np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)


def tf_scalar(event) -> float:
    """The value of a TensorBoard scalar summary event (a 0-d tensor proto)."""
    from tensorboard.util import tensor_util  # noqa: PLC0415

    return float(tensor_util.make_ndarray(event.tensor_proto))
