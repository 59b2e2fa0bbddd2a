"""TensorBoard event files, written with the `tensorboard` package alone: scalars, images and a
run's hparams, as TensorFlow 2's `tf.summary` writes them (tensor summaries carrying each
plugin's metadata), so TensorBoard's scalars, images and HParams dashboards read them.

Why not TensorFlow's (or CLU's) writer: importing TensorFlow costs a run ~9 s of start-up on
2 CPU cores, more than a small run's training. TensorBoard's own `EventFileWriter` opens its
file through TensorFlow's gfile whenever TensorFlow is installed, so the file is opened here and
framed by TensorBoard's `RecordWriter`.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

_FILE_NUMBER = itertools.count()  # two writers of one process never share a file name


class EventWriter:
    """Appends events to a new `events.out.tfevents.*` file in `logdir`; each write is flushed,
    so TensorBoard shows it at once and a kill loses nothing already written."""

    def __init__(self, logdir: str):
        from tensorboard.compat.proto import event_pb2  # noqa: PLC0415 - only where a run logs
        from tensorboard.summary.writer import record_writer  # noqa: PLC0415

        os.makedirs(logdir, exist_ok=True)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_FILE_NUMBER)}"
        )
        self._event = event_pb2.Event
        self._records = record_writer.RecordWriter(open(os.path.join(logdir, name), "wb"))  # noqa: SIM115
        self._write([self._event(wall_time=time.time(), file_version="brain.Event:2")])

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        from tensorboard.plugins.scalar import summary_v2  # noqa: PLC0415

        self._summaries(step, [summary_v2.scalar_pb(tag, float(v)) for tag, v in values.items()])

    def png_images(self, step: int, images: Mapping[str, tuple[int, int, bytes]]) -> None:
        """`images`: tag -> (width, height, the PNG file's bytes), one image per tag."""
        from tensorboard.compat.proto import summary_pb2  # noqa: PLC0415
        from tensorboard.plugins.image import metadata  # noqa: PLC0415
        from tensorboard.util import tensor_util  # noqa: PLC0415

        summaries = []
        for tag, (width, height, png) in images.items():
            # The images plugin's tensor: [width, height, PNG, ...] as strings.
            tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), png])
            value = summary_pb2.Summary.Value(
                tag=tag, metadata=metadata.create_summary_metadata(None, ""), tensor=tensor
            )
            summaries.append(summary_pb2.Summary(value=[value]))
        self._summaries(step, summaries)

    def hparams(self, values: Mapping[str, bool | int | float | str]) -> None:
        """The run's settings for the HParams dashboard (its session-start summary)."""
        from tensorboard.plugins.hparams import summary_v2  # noqa: PLC0415

        self._summaries(0, [summary_v2.hparams_pb(dict(values))])

    def close(self) -> None:
        self._records.close()

    def _summaries(self, step: int, summaries: list[Any]) -> None:
        now = time.time()
        self._write([self._event(wall_time=now, step=int(step), summary=s) for s in summaries])

    def _write(self, events: list[Any]) -> None:
        for event in events:
            self._records.write(event.SerializeToString())
        self._records.flush()
