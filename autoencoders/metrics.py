"""Metric logging: `workdir/metrics.jsonl` (append-only) plus TensorBoard events
(`tensorboard_events.py`): the scalars, and the run's hparams for the HParams dashboard.

Each JSONL line is one object. Metric rows: {"step", "epoch", "split", "time", <name>: value, ...}
with values per example (nats per image where they are log-likelihood terms). Event rows carry an
"event" key instead of "split" (e.g. "start" with the units of every metric, on every (re)start;
"cpu_matmuls", the product library the run's programs were compiled with and why, `cpu_matmuls`;
"pretrain", one per pretrained layer).
The file is only ever appended to: a resumed run adds lines, it never rewrites old ones, so after a
crash the same epoch can appear twice; readers take the last row per (epoch, split).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from autoencoders import tensorboard_events, trackers

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"  # TensorBoard events: these scalars, and evaluation's figures


class MetricsLog:
    """Appends rows to metrics.jsonl and mirrors scalars to TensorBoard (and to MLflow where
    `AUTOENCODERS_TRACKER=mlflow`: `trackers.py`)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tracker = trackers.from_environment(workdir)  # first: a bad value opens nothing
        self._file = open(self.path, "a")  # noqa: SIM115 - kept open for the run
        self._tb = tensorboard_events.EventWriter(os.path.join(workdir, TENSORBOARD_DIR))

    def write(self, *, step: int, epoch: int, split: str, values: Mapping[str, float]) -> None:
        row = {"step": int(step), "epoch": int(epoch), "split": split, "time": time.time()}
        row.update({k: float(v) for k, v in values.items()})
        self._append(row)
        scalars = {f"{split}/{k}": float(v) for k, v in values.items()}
        self._tb.scalars(int(step), scalars)
        if self._tracker is not None:
            self._tracker.metrics(int(step), scalars)

    def hparams(self, values: Mapping[str, Any]) -> None:
        """The run's settings for TensorBoard's HParams dashboard (which compares the runs of
        a sweep side by side, with their scalars), written on every (re)start."""
        self._tb.hparams(values)
        if self._tracker is not None:
            self._tracker.params(values)

    def event(self, name: str, **fields: Any) -> None:
        self._append({"event": name, "time": time.time(), **fields})

    def _append(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()  # a kill -9 after this loses nothing that was logged

    def close(self) -> None:
        self._tb.close()
        self._file.close()
        if self._tracker is not None:
            self._tracker.close()


def _rows(path: str) -> Iterator[dict[str, Any]]:
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {number} is not valid JSON ({e}).") from None


def read(path: str) -> Iterator[dict[str, Any]]:
    """Metric rows of a metrics.jsonl, in file order (event rows skipped)."""
    return (row for row in _rows(path) if "split" in row)


def events(path: str, name: str) -> list[dict[str, Any]]:
    """The event rows called `name` of a metrics.jsonl, in file order (e.g. one "start" per
    (re)start of the run: the last one describes the run as it is now)."""
    return [row for row in _rows(path) if row.get("event") == name]


def latest_by_epoch(path: str, split: str) -> dict[int, dict[str, Any]]:
    """The last row written for each epoch of `split` (later rows win after a resume)."""
    return {row["epoch"]: row for row in read(path) if row["split"] == split}
