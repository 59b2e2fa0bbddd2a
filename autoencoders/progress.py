"""Progress of long loops: a bar with an ETA on a terminal, plain lines everywhere else.

On a terminal (the stream is a TTY) `Progress` is a tqdm bar: done/total, rate, elapsed and time
left, and any counters given to `update` (e.g. running=2, failed=1). In CI, in log files and
under a launcher (not a TTY) a bar would be a stream of carriage returns, so it writes instead
one plain line at most every `every` seconds, and one at the end (or nothing, `lines=False`,
where the loop logs its own lines). `write` prints a line either way without breaking the bar;
`above(handler)` sends a logging handler's lines there too. Given `log` (e.g. `logging.info`),
the plain lines go to it, so they land where the program's other lines do (a run's log.txt).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any


def on_terminal(stream: IO | None = None) -> bool:
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """`with Progress(total, "runs") as bar: ...; bar.update(1, failed=0)`."""

    def __init__(
        self,
        total: int,
        description: str,
        unit: str = "",
        every: float = 30.0,
        stream: IO | None = None,
        log: Callable[[str], Any] | None = None,
        lines: bool = True,
        inner: bool = False,
    ):
        self.total, self.description, self.unit, self.every = total, description, unit, every
        self.stream = stream or sys.stderr
        self._log = log
        self._lines = lines  # False: nothing at all when not on a terminal
        self.done, self.counters = 0, {}
        self.start = self._last_line = time.monotonic()
        terminal = on_terminal(self.stream)
        if terminal:
            from tqdm import tqdm  # noqa: PLC0415 - only on a terminal

        self._bar = (
            tqdm(
                total=total,
                desc=description,
                unit=f" {unit}" if unit else "it",
                file=self.stream,
                # The terminal's size, or 100×20 where it reports none (a bare pty: tqdm would
                # draw nothing).
                ncols=shutil.get_terminal_size((100, 20)).columns,
                nrows=shutil.get_terminal_size((100, 20)).lines,
                leave=not inner,  # an inner bar (steps of an epoch) is redrawn, then cleared
                position=int(inner),
            )  # fmt: skip
            if terminal
            else None
        )

    def update(self, n: int = 1, **counters: Any) -> None:
        """`n` more done; `counters` shown beside the count (they replace earlier values)."""
        self.done += n
        self.counters.update(counters)
        if self._bar is not None:
            if counters:
                self._bar.set_postfix(self.counters, refresh=False)
            self._bar.update(n)
        elif self._lines and (
            time.monotonic() - self._last_line >= self.every or self.done >= self.total
        ):
            self._line()

    def reach(self, n: int) -> None:
        """Done up to `n` (a callback for loops that count for themselves)."""
        self.update(n - self.done)

    def reset(self) -> None:
        """Back to 0 of the same total (the next epoch's steps)."""
        self.done = 0
        if self._bar is not None:
            self._bar.reset()

    def _line(self) -> None:
        self._last_line = now = time.monotonic()
        elapsed = now - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        extra = "".join(f", {k} {v}" for k, v in self.counters.items())
        unit = f" {self.unit}" if self.unit else ""
        eta = f", about {left:.0f} s left" if self.done < self.total and self.done else ""
        self.write(
            f"{self.description}: {self.done}/{self.total}{unit}{extra}, {elapsed:.0f} s{eta}"
        )

    def write(self, line: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        elif self._log is not None:
            self._log(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    @contextlib.contextmanager
    def above(self, handler: logging.StreamHandler) -> Iterator[None]:
        """Lines that `handler` (a console handler) logs meanwhile are written above the bar,
        not through it."""
        if self._bar is None:
            yield
            return

        def emit(record: logging.LogRecord) -> None:
            try:
                self.write(handler.format(record))
            except Exception:  # noqa: BLE001 - a handler must not raise; logging reports it
                handler.handleError(record)

        handler.emit = emit
        try:
            yield
        finally:
            del handler.emit  # the class's own again

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
