"""Stopping a command cleanly on SIGINT (Ctrl-C), SIGTERM (a cluster's cancel) or a dead launcher.

Python raises KeyboardInterrupt wherever the main thread happens to be, including places that
swallow it (JAX's garbage-collection callback), so a Ctrl-C during start-up could be lost. An entry
point calls `install()` first, before its slow imports, and runs its `main` inside
`exits_cleanly`. Before and after `main` a signal ends the process at once: nothing is being
written. During it the signal is recorded, and the work stops at its next safe point (`check`,
which raises `Interrupted`): training's are the end of start-up and each epoch boundary, after
saving that epoch. Either way the command prints one line and exits with status 128 + the signal's
number; the same signal a second time stops it at once.

Without `install` (the library or an entry point's `main` used from Python) nothing changes:
`check` never raises and `exits_cleanly` lets KeyboardInterrupt through.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator

# Set by the sweep launcher (`launch.LocalBackend`) in its children's environment: its pid.
LAUNCHER_PID = "AUTOENCODERS_LAUNCHER_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_received: list[int] = []  # the signals recorded since `install`, first first
_installed = False
_outside_work = "during start-up"  # where the process is outside `exits_cleanly`'s work
_raise_at_once = False  # inside `exits_cleanly(at_once=True)`


class Interrupted(KeyboardInterrupt):
    """A recorded SIGINT or SIGTERM, acted upon at a safe point."""

    def __init__(self, signum: int, where: str):
        super().__init__(_line(where))
        self.signum = signum


def _line(where: str) -> str:
    return f"interrupted {where}; re-run the same command to resume"


def install() -> None:
    """SIGINT and SIGTERM stop the process as the module docstring says, never lost."""
    global _installed
    _installed = True
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _record)
    _die_with_launcher()


def _die_with_launcher() -> None:
    """A sweep launcher's child stops as on SIGTERM (the clean stop) when the launcher dies, even
    by SIGKILL: Linux's PR_SET_PDEATHSIG, asked for here rather than between fork and exec in the
    launcher, which is multithreaded. A launcher already gone by now: stop at once.

    The death signal is SIGHUP, not SIGTERM, because Linux sends it once per thread of a dying
    launcher (the child passes from each thread to the next as they exit): as SIGTERM, the second
    would read as "SIGTERM again" and stop the run before it saves."""
    launcher = os.environ.get(LAUNCHER_PID)
    if not launcher or not sys.platform.startswith("linux"):
        return
    signal.signal(signal.SIGHUP, _launcher_died)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGHUP))
    if os.getppid() != int(launcher):
        os._exit(128 + signal.SIGTERM)


def _launcher_died(signum: int, frame) -> None:
    if not _received:  # only the first of its repeats counts; a stop already recorded stands
        _record(signal.SIGTERM, frame)


def _record(signum: int, frame) -> None:
    name = signal.Signals(signum).name
    if signum in _received:  # the same signal again: stop now, as if no handler were installed
        os.write(2, f"{name} again: stopping now\n".encode())
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received.append(signum)
    if _outside_work:  # importing, parsing flags, or done: nothing to save
        os.write(2, f"{_line(_outside_work)}\n".encode())
        os._exit(128 + signum)
    if _raise_at_once:
        raise KeyboardInterrupt
    os.write(2, f"{name}: stopping at the next safe point ({name} again: at once)\n".encode())


def requested() -> bool:
    """Whether a SIGINT or SIGTERM was recorded."""
    return bool(_received)


def check(where: str) -> None:
    """At a safe point: raises `Interrupted` ("interrupted <where>; ...") if a signal was
    recorded."""
    if _received:
        raise Interrupted(_received[0], where)


@contextlib.contextmanager
def exits_cleanly(*, at_once: bool = False) -> Iterator[None]:
    """Around an entry point's work, or decorating its `main`: a stop (`Interrupted`,
    KeyboardInterrupt, or a signal recorded during the work) prints one line and exits with
    status 128 + the signal's number. With `at_once` (work with no safe points, whose partial
    results are discarded), a signal raises KeyboardInterrupt at once."""
    global _outside_work, _raise_at_once
    try:
        _outside_work, _raise_at_once = "", at_once
        try:
            yield
        finally:
            _outside_work, _raise_at_once = "as it ended", False
        check("as it ended")
    except KeyboardInterrupt as e:
        if not _installed:
            raise
        print(str(e) or _line("during its work"), file=sys.stderr, flush=True)
        status = 128 + (_received[0] if _received else signal.SIGINT)
        if at_once:  # cut short mid-computation, JAX's teardown at exit can crash: skip it
            sys.stdout.flush()
            os._exit(status)
        raise SystemExit(status) from None
