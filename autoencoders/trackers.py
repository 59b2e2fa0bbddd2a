"""An optional hosted tracker beside metrics.jsonl and TensorBoard: MLflow, off by default.

`AUTOENCODERS_TRACKER=mlflow` (needs `pip install -e '.[mlflow]'`) mirrors every run's metric
rows and its config (as params) to the MLflow tracking server that MLflow's own settings name
(`MLFLOW_TRACKING_URI`, `MLFLOW_EXPERIMENT_NAME`, default experiment `autoencoders`). The
variable is inherited by a sweep's runs, on this machine or a cluster. A resumed run continues
its MLflow run (its id is kept in `<workdir>/mlflow_run_id`), so the curves stay one run.
metrics.jsonl stays the record; the tracker is a view.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

TRACKER_ENV = "AUTOENCODERS_TRACKER"
TRACKERS = ("mlflow",)
RUN_ID_FILE = "mlflow_run_id"


def from_environment(workdir: str) -> MlflowTracker | None:
    """The tracker `AUTOENCODERS_TRACKER` asks for, or None; a ValueError names a bad value or
    the missing extra."""
    name = os.environ.get(TRACKER_ENV, "")
    if not name:
        return None
    if name not in TRACKERS:
        raise ValueError(f"{TRACKER_ENV}={name!r}: one of {', '.join(TRACKERS)}, or unset.")
    try:
        import mlflow  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        raise ValueError(
            f"{TRACKER_ENV}=mlflow needs MLflow: pip install -e '.[mlflow]'."
        ) from None
    return MlflowTracker(workdir)


class MlflowTracker:
    """One MLflow run per workdir: metric rows as `<split>/<name>` at their training step."""

    def __init__(self, workdir: str):
        from mlflow.tracking import MlflowClient  # noqa: PLC0415 - an optional extra

        self.client = MlflowClient()
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "autoencoders")
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        path = os.path.join(workdir, RUN_ID_FILE)
        self.new = not os.path.exists(path)
        if self.new:
            name = os.path.basename(os.path.abspath(workdir))
            self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
            with open(path, "w") as f:
                f.write(self.run_id)
        else:
            with open(path) as f:
                self.run_id = f.read().strip()
            self.client.update_run(self.run_id, status="RUNNING")

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric  # noqa: PLC0415

        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, int(step)) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=rows)

    def params(self, values: Mapping[str, Any]) -> None:
        """The config, once: MLflow keeps a param's first value (a resumed run's config is the
        run's own, or changed on purpose; config.json keeps its history)."""
        if self.new:
            from mlflow.entities import Param  # noqa: PLC0415

            params = [Param(k, str(v)[:500]) for k, v in values.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
