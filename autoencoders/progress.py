"""Progress of long loops: a bar with an ETA on a terminal, plain lines everywhere else.

On a terminal (the stream is a TTY) `Progress` is a tqdm bar: done/total, rate, elapsed and time
left, and any counters given to `update` (e.g. running=2, failed=1). In CI, in log files and
under a launcher (not a TTY) a bar would be a stream of carriage returns, so it writes instead
one plain line at most every `every` seconds, and one at the end. `write` prints a line either
way without breaking the bar. Given `log` (e.g. `logging.info`), the plain lines go to it, so
they land where the program's other lines do (a run's log.txt).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from tqdm import tqdm


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
    ):
        self.total, self.description, self.unit, self.every = total, description, unit, every
        self.stream = stream or sys.stderr
        self._log = log
        self.done, self.counters = 0, {}
        self.start = self._last_line = time.monotonic()
        terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._bar = (
            tqdm(
                total=total,
                desc=description,
                unit=f" {unit}" if unit else "it",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
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
        elif time.monotonic() - self._last_line >= self.every or self.done >= self.total:
            self._line()

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

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
