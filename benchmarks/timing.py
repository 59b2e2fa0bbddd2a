"""Wall-clock timing shared by the JAX and PyTorch sides. Callers make `fn` synchronous (JAX:
block_until_ready inside it; PyTorch on CPU already is)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat_seconds(fn: Callable[[], Any], repeats: int) -> list[float]:
    return [seconds(fn) for _ in range(repeats)]


def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` calls of `fn`, after one warm-up call."""
    fn()
    return min(repeat_seconds(fn, repeats))


def interleaved_best_seconds(
    fns: Mapping[str, Callable[[], Any]], repeats: int
) -> dict[str, float]:
    """The fastest call of each of `fns`, after one warm-up call each, over `repeats` rounds that
    call every one in turn: programs compared with each other then share the clock's drift."""
    for fn in fns.values():
        fn()
    return {name: min(t) for name, t in interleaved_seconds(fns, repeats).items()}


def interleaved_seconds(
    fns: Mapping[str, Callable[[], Any]], repeats: int
) -> dict[str, list[float]]:
    """The seconds of `repeats` calls of each of `fns`, in rounds that call every one in turn
    (no warm-up), so that their timings share the machine's drift over the minutes they take."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds(fn))
    return times


def best_matmul_gflops(matmul: Callable[[], Any], size: int, repeats: int) -> float:
    """GFLOP/s of the fastest of `repeats` size×size products, after one warm-up product."""
    return 2 * size**3 / best_seconds(matmul, repeats) / 1e9


def machine_busy_seconds() -> float | None:
    """CPU seconds every process (and the hypervisor's steal) has used since boot, from Linux's
    /proc/stat; None where that file does not exist."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process, all its threads (XLA's and PyTorch's pools included)."""
    times = os.times()
    return times.user + times.system


class OtherCpuMeter:
    """Cores used by everything but this process since the meter started: the machine's busy CPU
    time minus this process's own, per wall-clock second. None off Linux."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._machine, self._own = machine_busy_seconds(), own_cpu_seconds()

    def cores(self) -> float | None:
        machine = machine_busy_seconds()
        if machine is None or self._machine is None:
            return None
        others = (machine - self._machine) - (own_cpu_seconds() - self._own)
        return max(0.0, others) / (time.perf_counter() - self._wall)
