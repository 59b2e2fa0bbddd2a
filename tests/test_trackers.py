"""AUTOENCODERS_TRACKER=mlflow: a run's metric rows and config in MLflow (a local file store
here; a tracking server is the same client), one MLflow run across a resume; off by default."""

from __future__ import annotations

import pytest

from autoencoders import metrics, trackers, training
from tests.helpers import tiny_config

mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra (pip install -e '.[mlflow]')")


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: the file store is opt-in
    monkeypatch.setenv(trackers.TRACKER_ENV, "mlflow")
    return tmp_path


def test_a_run_and_its_resume_are_one_mlflow_run(mlflow_store):
    workdir = mlflow_store / "run"
    config = tiny_config("vae", **{"train.num_epochs": 2})
    training.train_and_evaluate(config, str(workdir))
    config.train.num_epochs = 3  # more epochs: a resume of the same run
    training.train_and_evaluate(config, str(workdir))

    client = mlflow.tracking.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("autoencoders").experiment_id])
    assert run.info.run_id == (workdir / trackers.RUN_ID_FILE).read_text()
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["model.latent_dim"] == "2" and run.data.params["data.name"] == "digits"
    history = client.get_metric_history(run.info.run_id, "test/neg_elbo")
    rows = metrics.latest_by_epoch(str(workdir / "metrics.jsonl"), "test")
    assert [(m.step, m.value) for m in history] == [
        (rows[e]["step"], rows[e]["neg_elbo"]) for e in sorted(rows)
    ]


def test_a_bad_tracker_is_one_line_and_none_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv(trackers.TRACKER_ENV, "wandb")
    with pytest.raises(ValueError, match="AUTOENCODERS_TRACKER='wandb': one of mlflow, or unset"):
        metrics.MetricsLog(str(tmp_path))
    assert not (tmp_path / metrics.METRICS_FILE).exists()
    monkeypatch.delenv(trackers.TRACKER_ENV)
    assert trackers.from_environment(str(tmp_path)) is None
